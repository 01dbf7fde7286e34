package wire

import "context"

// Annotator is told what a request acted on. The audit log installs one in
// the context of each request it records; handlers say what they did with
// Annotate and AnnotateCmd and need not know whether anyone listens.
type Annotator interface {
	// Annotate names the object: kind is "container", "image", "volume",
	// "network" or "exec"; ref an ID or name; name may be empty.
	Annotate(ctx context.Context, kind, ref, name string)
	// AnnotateCmd records an exec's command line.
	AnnotateCmd(cmd []string)
}

type annotatorKey struct{}

// WithAnnotator returns ctx carrying a.
func WithAnnotator(ctx context.Context, a Annotator) context.Context {
	return context.WithValue(ctx, annotatorKey{}, a)
}

// Annotate tells the request's annotator, if any, which object the request
// acts on. Without one it costs one context lookup.
func Annotate(ctx context.Context, kind, ref, name string) {
	if a, ok := ctx.Value(annotatorKey{}).(Annotator); ok {
		a.Annotate(ctx, kind, ref, name)
	}
}

// AnnotateCmd tells the request's annotator, if any, an exec's command line.
func AnnotateCmd(ctx context.Context, cmd []string) {
	if a, ok := ctx.Value(annotatorKey{}).(Annotator); ok {
		a.AnnotateCmd(cmd)
	}
}
