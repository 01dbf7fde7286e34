package engine

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/distribution"
	"skiffd/internal/layer"
)

// registryState is the engine's registry side (issue 11): one client (its
// token cache is shared by every pull and push), the download and upload
// slots, and the layer downloads in flight, shared by concurrent pulls.
type registryState struct {
	// endpoints is the client and the configuration it was made from,
	// swapped whole by a reload (mirrors, insecure registries) while
	// pulls and pushes that started keep theirs.
	endpoints atomic.Pointer[registryEndpoints]
	downloads chan struct{} // a slot per concurrent layer download
	uploads   chan struct{} // a slot per concurrent layer upload

	// sources maps layers to the compressed blobs known in registries.
	sources *blobSources

	mu      sync.Mutex
	flights map[string]*layerFlight // by chain ID
}

// layerFlight is one layer being downloaded and registered; pulls that
// need the same chain wait on done instead of downloading it again.
type layerFlight struct {
	done chan struct{}
	l    layer.Layer
	err  error
}

func newRegistryState(opts Options) *registryState {
	cfg := opts.Registry
	if cfg.UserAgent == "" {
		cfg.UserAgent = "skiffd/" + opts.Build.Version
	}
	down, up := opts.MaxConcurrentDownloads, opts.MaxConcurrentUploads
	if down <= 0 {
		down = 3
	}
	if up <= 0 {
		up = 5
	}
	r := &registryState{
		downloads: make(chan struct{}, down),
		uploads:   make(chan struct{}, up),
		flights:   make(map[string]*layerFlight),
		sources:   openBlobSources(opts.DataRoot),
	}
	r.endpoints.Store(&registryEndpoints{client: distribution.NewClient(cfg), cfg: cfg})
	return r
}

// registryEndpoints is a registry client and the configuration it uses.
type registryEndpoints struct {
	client *distribution.Client
	cfg    distribution.Config
}

// client is the current registry client.
func (r *registryState) client() *distribution.Client { return r.endpoints.Load().client }

// cfg is the current registry configuration.
func (r *registryState) cfg() distribution.Config { return r.endpoints.Load().cfg }

// PrepareRegistryReload takes new registry mirrors and insecure
// registries (checked by the config's parser) and returns the commit that makes later pulls, pushes and
// logins use them (dockerd reloads both on SIGHUP). Pulls already under
// way finish with the old ones; the token cache starts empty.
func (e *Engine) PrepareRegistryReload(mirrors, insecure []string) (commit func(), err error) {
	cfg := e.reg.cfg()
	cfg.Mirrors = slices.Clone(mirrors)
	cfg.InsecureRegistries = slices.Clone(insecure)
	next := &registryEndpoints{client: distribution.NewClient(cfg), cfg: cfg}
	return func() { e.reg.endpoints.Store(next) }, nil
}

// share runs fetch for chain unless a flight for it is under way, in which
// case it waits for that one (joined reports which). The flight's result is
// every waiter's result.
func (r *registryState) share(ctx context.Context, chain string, fetch func() (layer.Layer, error)) (l layer.Layer, joined bool, err error) {
	r.mu.Lock()
	if f, ok := r.flights[chain]; ok {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.l, true, f.err
		case <-ctx.Done():
			return layer.Layer{}, true, ctx.Err()
		}
	}
	f := &layerFlight{done: make(chan struct{})}
	r.flights[chain] = f
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.flights, chain)
		r.mu.Unlock()
		close(f.done)
	}()
	f.l, f.err = fetch()
	return f.l, false, f.err
}

// acquire takes a slot of sem, calling waiting first when none is free.
func acquire(ctx context.Context, sem chan struct{}, waiting func()) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	if waiting != nil {
		waiting()
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// progressFunc receives the progress messages of a pull or push; it is
// called from several goroutines and must serialise itself.
type progressFunc func(types.ProgressMessage)

// step sends a per-layer step without byte counts ("Pull complete").
func (p progressFunc) step(id, status string) {
	p(types.ProgressMessage{Status: status, ProgressDetail: &types.ProgressDetail{}, ID: id})
}

// bytes sends a per-layer transfer step with its counts and bar.
func (p progressFunc) bytes(id, status string, current, total int64) {
	p(types.ProgressMessage{Status: status, ProgressDetail: &types.ProgressDetail{Current: current, Total: total},
		Progress: progressBar(current, total), ID: id})
}

// progressBar renders a transfer as dockerd renders it server-side (its
// JSONProgress.String at a width of 200 columns and without a start time):
// "[=>      ...      ]  32.77kB/1.028MB".
func progressBar(current, total int64) string {
	if current <= 0 && total <= 0 {
		return ""
	}
	if total <= 0 {
		return fmt.Sprintf("%8v", humanSize(current))
	}
	pct := min(int(float64(current)/float64(total)*100)/2, 50)
	bar := "[" + strings.Repeat("=", pct) + ">" + strings.Repeat(" ", max(50-pct, 0)) + "] "
	if current > total {
		return bar + fmt.Sprintf("%8v", humanSize(current))
	}
	return bar + fmt.Sprintf("%8v/%v", humanSize(current), humanSize(total))
}

// humanSize is go-units' HumanSize: decimal units, four significant digits.
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	size, i := float64(n), 0
	for size >= 1000 && i < len(units)-1 {
		size /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", size, units[i])
}

// progressReader counts the bytes read through it and reports them at most
// every progressInterval, and once at the end.
type progressReader struct {
	r        io.Reader
	n, total int64
	last     time.Time
	report   func(n, total int64)
}

const progressInterval = 100 * time.Millisecond

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 && (p.last.IsZero() || time.Since(p.last) >= progressInterval || p.n == p.total) {
		p.last = time.Now()
		p.report(p.n, p.total)
	}
	return n, err
}

// registryInfo is /info's RegistryConfig as dockerd shapes it: the
// insecure CIDRs (loopback always), an IndexConfigs entry for Docker Hub
// with the mirrors and one per insecure registry named by host, and the
// mirrors, each with dockerd's trailing slash.
func (r *registryState) registryInfo() types.RegistryConfig {
	mirrors := []string{}
	for _, m := range r.cfg().Mirrors {
		if !strings.HasSuffix(m, "/") {
			m += "/"
		}
		mirrors = append(mirrors, m)
	}
	rc := types.RegistryConfig{
		InsecureRegistryCIDRs: []string{"127.0.0.0/8", "::1/128"},
		IndexConfigs: map[string]*types.IndexInfo{
			"docker.io": {Name: "docker.io", Mirrors: mirrors, Secure: true, Official: true},
		},
		Mirrors: mirrors,
	}
	for _, ir := range r.cfg().InsecureRegistries {
		if _, n, err := net.ParseCIDR(ir); err == nil {
			if !slices.Contains(rc.InsecureRegistryCIDRs, n.String()) {
				rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, n.String())
			}
			continue
		}
		host := strings.TrimPrefix(strings.TrimPrefix(ir, "http://"), "https://")
		rc.IndexConfigs[host] = &types.IndexInfo{Name: host, Mirrors: []string{}, Secure: false, Official: false}
	}
	return rc
}
