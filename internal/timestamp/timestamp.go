// Package timestamp reads the `since` and `until` values of the Docker API
// (events, logs) the way dockerd does, plus the forms the CLI would have
// converted for a curl user.
package timestamp

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"skiffd/internal/errdefs"
)

// The layouts dockerd's clients use for --since and --until that carry no
// zone of their own; they are read in the zone of the reference time.
const (
	layoutLocal     = "2006-01-02T15:04:05"
	layoutNanoLocal = "2006-01-02T15:04:05.999999999"
	layoutDateZone  = "2006-01-02Z07:00"
	layoutDateLocal = "2006-01-02"
)

// Parse reads a `since` or `until` query value. The empty string is the
// zero time (no bound).
//
// dockerd itself accepts only what the docker CLI sends, unix seconds with an
// optional fraction ("1795683896", "1795683896.325884747"; a fraction longer
// than nine digits is truncated), and so does Parse first, including
// dockerd's quirk that "-1" means no bound. For curl users it then also
// accepts what the CLI would have converted: a Go duration before now ("10m",
// "1h30m") and RFC 3339 dates and times, with or without seconds, fraction or
// zone ("2026-11-26", "2026-11-26T09:04", "2026-11-26T09:04:57.3+01:00"),
// read in now's zone when they have none.
//
// A value that is none of these gets dockerd's own error for it, such as
// `strconv.ParseInt: parsing "soon": invalid syntax`, as InvalidParameter.
func Parse(value string, now time.Time) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	sec, nsec, unixErr := parseUnix(value)
	if unixErr == nil {
		if sec == -1 {
			return time.Time{}, nil
		}
		return time.Unix(sec, nsec), nil
	}
	if d, err := time.ParseDuration(value); err == nil {
		return now.Add(-d), nil
	}
	if t, ok := parseRFC3339ish(value, now); ok {
		return t, nil
	}
	return time.Time{}, errdefs.InvalidParameter(unixErr)
}

// ParseSinceUntil reads the `since` and `until` parameters of GET /events
// with Parse, and rejects a window that ends before it starts with
// dockerd's message, quoting the values as the client sent them.
func ParseSinceUntil(since, until string, now time.Time) (sinceTime, untilTime time.Time, err error) {
	sinceTime, err = Parse(since, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	untilTime, err = Parse(until, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if !untilTime.IsZero() && untilTime.Before(sinceTime) {
		return time.Time{}, time.Time{}, errdefs.InvalidParameter(
			fmt.Errorf("`since` time (%s) cannot be after `until` time (%s)", since, until))
	}
	return sinceTime, untilTime, nil
}

// parseUnix reads "seconds" or "seconds.fraction" as dockerd does, returning
// strconv's error (which is what dockerd shows the client) on failure.
func parseUnix(value string) (sec, nsec int64, err error) {
	s, frac, hasFrac := strings.Cut(value, ".")
	sec, err = strconv.ParseInt(s, 10, 64)
	if err != nil || !hasFrac {
		return sec, 0, err
	}
	nsec, err = strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return sec, 0, err
	}
	// Scale the fraction to nanoseconds: "3" is 300000000, and digits past
	// the ninth are dropped.
	for n := len(frac); n < 9; n++ {
		nsec *= 10
	}
	for n := len(frac); n > 9; n-- {
		nsec /= 10
	}
	return sec, nsec, nil
}

// parseRFC3339ish picks the layout for value the way the docker CLI does
// (by its dots, T, colons and zone) and parses it.
func parseRFC3339ish(value string, now time.Time) (time.Time, bool) {
	// A zone is present when there is a Z, a + or a third dash (-07:00).
	local := !strings.ContainsAny(value, "zZ+") && strings.Count(value, "-") != 3
	var layout string
	switch {
	case strings.Contains(value, "."):
		layout = time.RFC3339Nano
		if local {
			layout = layoutNanoLocal
		}
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if !local && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the one in the numeric zone offset
		}
		switch {
		case colons == 0 && local:
			layout = "2006-01-02T15"
		case colons == 0:
			layout = "2006-01-02T15Z07:00"
		case colons == 1 && local:
			layout = "2006-01-02T15:04"
		case colons == 1:
			layout = "2006-01-02T15:04Z07:00"
		case local:
			layout = layoutLocal
		default:
			layout = time.RFC3339
		}
	case local:
		layout = layoutDateLocal
	default:
		layout = layoutDateZone
	}
	var t time.Time
	var err error
	if local {
		t, err = time.ParseInLocation(layout, value, time.FixedZone(now.Zone()))
	} else {
		t, err = time.Parse(layout, value)
	}
	return t, err == nil
}
