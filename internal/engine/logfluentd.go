package engine

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"skiffd/internal/container"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/units"
)

// fluentdOptions are the fluentd driver's options, read as dockerd's
// parseConfig reads them.
type fluentdOptions struct {
	network, address             string
	bufferLimit                  int64
	retryWait, reconnect         time.Duration
	maxRetries                   int
	async, subSecond, requestAck bool
	writeTimeout, readTimeout    time.Duration
}

// fluentdCache checks the options of the fluentd driver as dockerd's
// ValidateLogOpt does, and returns the rotation of its local cache.
func fluentdCache(cfg map[string]string) (logFiles, error) {
	lf, err := senderCache(cfg, "unknown log opt '%s' for fluentd log driver", func(k, _ string) (bool, error) {
		switch k {
		case "fluentd-address", "fluentd-async", "fluentd-async-reconnect-interval", "fluentd-buffer-limit",
			"fluentd-max-retries", "fluentd-request-ack", "fluentd-retry-wait", "fluentd-sub-second-precision",
			"fluentd-write-timeout", "fluentd-read-timeout":
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return logFiles{}, err
	}
	// The values, once every key is known (dockerd's order).
	if _, err := parseFluentd(cfg); err != nil {
		return logFiles{}, err
	}
	return lf, nil
}

// parseFluentd reads the fluentd driver's options, with dockerd's
// defaults and error texts.
func parseFluentd(cfg map[string]string) (fluentdOptions, error) {
	o := fluentdOptions{bufferLimit: 1 << 20, retryWait: time.Second, maxRetries: math.MaxInt32}
	var err error
	if o.network, o.address, err = fluentdTarget(cfg["fluentd-address"]); err != nil {
		return o, fmt.Errorf("invalid fluentd-address (%s): %w", cfg["fluentd-address"], err)
	}
	if v := cfg["fluentd-buffer-limit"]; v != "" {
		if o.bufferLimit, err = units.RAMInBytes(v); err != nil {
			return o, err
		}
	}
	if v := cfg["fluentd-retry-wait"]; v != "" {
		if o.retryWait, err = time.ParseDuration(v); err != nil {
			return o, err
		}
	}
	if v := cfg["fluentd-max-retries"]; v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return o, err
		}
		if n > math.MaxInt32 {
			return o, errors.New("invalid fluentd-max-retries: value out of range")
		}
		o.maxRetries = int(n)
	}
	for _, b := range []struct {
		key string
		to  *bool
	}{{"fluentd-async", &o.async}, {"fluentd-sub-second-precision", &o.subSecond}, {"fluentd-request-ack", &o.requestAck}} {
		if v := cfg[b.key]; v != "" {
			if *b.to, err = strconv.ParseBool(v); err != nil {
				return o, err
			}
		}
	}
	if v := cfg["fluentd-async-reconnect-interval"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return o, fmt.Errorf("invalid value for fluentd-async-reconnect-interval: %w", err)
		}
		if d != 0 && (d < 100*time.Millisecond || d > 10*time.Second) {
			return o, fmt.Errorf("invalid value for fluentd-async-reconnect-interval: value (%q) must be between %s and %s", d, 100*time.Millisecond, 10*time.Second)
		}
		o.reconnect = d
	}
	for _, t := range []struct {
		key string
		to  *time.Duration
	}{{"fluentd-write-timeout", &o.writeTimeout}, {"fluentd-read-timeout", &o.readTimeout}} {
		if v := cfg[t.key]; v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return o, fmt.Errorf("invalid value for %s: value must be a duration: %w", t.key, err)
			}
			if d < 0 {
				return o, fmt.Errorf("invalid value for %s: value must be a duration that is non-negative", t.key)
			}
			*t.to = d
		}
	}
	return o, nil
}

// fluentdTarget is the network and address of a fluentd-address, as
// dockerd's parseAddress reads it: tcp://127.0.0.1:24224 by default, a
// scheme-less address being tcp, unix://path, tls://host:port.
func fluentdTarget(address string) (network, addr string, err error) {
	if address == "" {
		return "tcp", "127.0.0.1:24224", nil
	}
	if !strings.Contains(address, "://") {
		address = "tcp://" + address
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", "", err
	}
	switch u.Scheme {
	case "unix":
		if strings.TrimLeft(u.Path, "/") == "" {
			return "", "", errors.New("path is empty")
		}
		return "unix", u.Path, nil
	case "tcp", "tls":
	default:
		return "", "", fmt.Errorf("unsupported scheme: '%s'", u.Scheme)
	}
	if u.Path != "" {
		return "", "", errors.New("should not contain a path element")
	}
	host, port := "127.0.0.1", "24224"
	if h := u.Hostname(); h != "" {
		host = h
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return "", "", fmt.Errorf("invalid port: %w", err)
		}
		port = p
	}
	return u.Scheme, net.JoinHostPort(host, port), nil
}

// fluentdSpec is where and how the shim sends c's lines with the fluentd
// driver, with dockerd's record fields; nil for other drivers.
func fluentdSpec(c *container.Container) (*spec.Fluentd, error) {
	lc := c.HostConfig.LogConfig
	if lc.Type != "fluentd" {
		return nil, nil
	}
	o, err := parseFluentd(lc.Config)
	if err != nil {
		return nil, err
	}
	tag, err := driverTag(c)
	if err != nil {
		return nil, err
	}
	// dockerd's record: the full ID and the name with its slash, then
	// the picked labels and env, which replace fields of the same name.
	record := map[string]string{"container_id": c.ID, "container_name": c.Name}
	if err := containerAttrs(record, c, lc.Config); err != nil {
		return nil, err
	}
	limit := o.bufferLimit
	if limit > math.MaxInt32 {
		limit = math.MaxInt32
	}
	maxRetries := o.maxRetries
	if maxRetries == math.MaxInt32 {
		maxRetries = 0 // no limit
	}
	return &spec.Fluentd{Network: o.network, Address: o.address, Tag: tag, Record: record,
		SubSecond: o.subSecond, RequestAck: o.requestAck, Async: o.async, BufferLimit: limit,
		RetryWait: int64(o.retryWait), MaxRetries: maxRetries, ReconnectInterval: int64(o.reconnect),
		WriteTimeout: int64(o.writeTimeout), ReadTimeout: int64(o.readTimeout)}, nil
}
