package engine

import (
	"strings"

	"skiffd/internal/container"
	"skiffd/internal/runtime/journald"
	"skiffd/internal/runtime/spec"
)

// journaldCache checks the options of the journald driver as dockerd's
// validateLogOpt does, and returns the rotation of its local cache (where
// docker logs reads: dockerd reads the journal through libsystemd, which
// skiffd, without cgo, does not link).
func journaldCache(cfg map[string]string) (logFiles, error) {
	return senderCache(cfg, "unknown log opt '%s' for journald log driver", func(string, string) (bool, error) { return false, nil })
}

// journaldSpec is the journal's socket and dockerd's fields of c for the
// journald driver; nil for other drivers.
func (e *Engine) journaldSpec(c *container.Container) (*spec.Journald, error) {
	lc := c.HostConfig.LogConfig
	if lc.Type != "journald" {
		return nil, nil
	}
	tag, err := driverTag(c)
	if err != nil {
		return nil, err
	}
	short := c.ID
	if len(short) > 12 {
		short = short[:12]
	}
	var image string
	if c.Config != nil {
		image = c.Config.Image
	}
	vars := map[string]string{
		"CONTAINER_ID": short, "CONTAINER_ID_FULL": c.ID, "CONTAINER_NAME": strings.TrimPrefix(c.Name, "/"),
		"CONTAINER_TAG": tag, "IMAGE_NAME": image, "SYSLOG_IDENTIFIER": tag,
	}
	// The picked labels and env, named as journal fields (dockerd's
	// sanitizeKeyMod), over the container's own fields.
	attrs := map[string]string{}
	if err := containerAttrs(attrs, c, lc.Config); err != nil {
		return nil, err
	}
	for k, v := range attrs {
		if k = journald.FieldName(k); k != "" {
			vars[k] = v
		}
	}
	socket := e.opts.JournalSocket
	if socket == "" {
		socket = journald.DefaultSocket
	}
	return &spec.Journald{Socket: socket, Vars: vars}, nil
}
