package timestamp

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"skiffd/internal/errdefs"
)

func TestParseTime(t *testing.T) {
	// now is in a +02:00 zone, to prove zone-less values are read in it.
	zone := time.FixedZone("EET", 2*60*60)
	now := time.Date(2026, 11, 26, 11, 4, 57, 0, zone)
	tests := []struct {
		value string
		want  time.Time
	}{
		{"", time.Time{}},
		{"-1", time.Time{}}, // dockerd's "no bound" sentinel
		{"0", time.Unix(0, 0)},
		{"1795683896", time.Unix(1795683896, 0)},
		{"1795683897.325884747", time.Unix(1795683897, 325884747)},
		{"1795683897.3", time.Unix(1795683897, 300000000)},
		{"1795683897.000000001", time.Unix(1795683897, 1)},
		{"1795683897.3258847479999", time.Unix(1795683897, 325884747)}, // truncated
		{"+5", time.Unix(5, 0)},
		{"-5", time.Unix(-5, 0)},
		{"10m", now.Add(-10 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"-10s", now.Add(10 * time.Second)},
		{"2026-11-26T09:04:57Z", time.Date(2026, 11, 26, 9, 4, 57, 0, time.UTC)},
		{"2026-11-26T09:04:57.325884747Z", time.Date(2026, 11, 26, 9, 4, 57, 325884747, time.UTC)},
		{"2026-11-26T10:04:57+01:00", time.Date(2026, 11, 26, 9, 4, 57, 0, time.UTC)},
		{"2026-11-26T10:04:57-01:00", time.Date(2026, 11, 26, 11, 4, 57, 0, time.UTC)},
		{"2026-11-26T10:04+01:00", time.Date(2026, 11, 26, 9, 4, 0, 0, time.UTC)},
		{"2026-11-26T10Z", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)},
		{"2026-11-26Z", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
		{"2026-11-26T11:04:57", time.Date(2026, 11, 26, 11, 4, 57, 0, zone)},
		{"2026-11-26T11:04:57.5", time.Date(2026, 11, 26, 11, 4, 57, 500000000, zone)},
		{"2026-11-26T11:04", time.Date(2026, 11, 26, 11, 4, 0, 0, zone)},
		{"2026-11-26T11", time.Date(2026, 11, 26, 11, 0, 0, 0, zone)},
		{"2026-11-26", time.Date(2026, 11, 26, 0, 0, 0, 0, zone)},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := Parse(tt.value, now)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.value, err)
			}
			if !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
				t.Errorf("Parse(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestParseTimeInvalid(t *testing.T) {
	tests := []struct{ value, want string }{
		{"soon", `strconv.ParseInt: parsing "soon": invalid syntax`},
		{"bla", `strconv.ParseInt: parsing "bla": invalid syntax`},
		{"5.", `strconv.ParseInt: parsing "": invalid syntax`},
		{"5.x", `strconv.ParseInt: parsing "x": invalid syntax`},
		{"2026-13-45", `strconv.ParseInt: parsing "2026-13-45": invalid syntax`},
		{"99999999999999999999", `strconv.ParseInt: parsing "99999999999999999999": value out of range`},
		{"10 minutes", `strconv.ParseInt: parsing "10 minutes": invalid syntax`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			_, err := Parse(tt.value, time.Now())
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse(%q) error = %v, want %q", tt.value, err, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("Parse(%q) kind = %v, want invalid parameter", tt.value, errdefs.KindOf(err))
			}
		})
	}
}

func TestParseSinceUntil(t *testing.T) {
	now := time.Unix(1795683900, 0)
	tests := []struct {
		since, until         string
		wantSince, wantUntil time.Time
		wantErr              string
	}{
		{"", "", time.Time{}, time.Time{}, ""},
		{"1795683896", "1795683902", time.Unix(1795683896, 0), time.Unix(1795683902, 0), ""},
		{"1795683896", "", time.Unix(1795683896, 0), time.Time{}, ""},
		{"", "1795683902", time.Time{}, time.Unix(1795683902, 0), ""},
		{"5", "5", time.Unix(5, 0), time.Unix(5, 0), ""},
		{"10", "3", time.Time{}, time.Time{}, "`since` time (10) cannot be after `until` time (3)"},
		{"bla", "10", time.Time{}, time.Time{}, `strconv.ParseInt: parsing "bla": invalid syntax`},
		{"10", "bla", time.Time{}, time.Time{}, `strconv.ParseInt: parsing "bla": invalid syntax`},
	}
	for _, tt := range tests {
		t.Run(tt.since+"_"+tt.until, func(t *testing.T) {
			s, u, err := ParseSinceUntil(tt.since, tt.until, now)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errdefs.ErrInvalidParameter) {
					t.Errorf("ParseSinceUntil(%q, %q) error = %v, want invalid parameter %q", tt.since, tt.until, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSinceUntil(%q, %q) error = %v", tt.since, tt.until, err)
			}
			if !s.Equal(tt.wantSince) || !u.Equal(tt.wantUntil) {
				t.Errorf("ParseSinceUntil(%q, %q) = %v, %v, want %v, %v", tt.since, tt.until, s, u, tt.wantSince, tt.wantUntil)
			}
		})
	}
}

func FuzzParseTime(f *testing.F) {
	for _, seed := range []string{
		"", "0", "-1", "1795683896", "1795683897.325884747", "5.", "10m", "-10s",
		"2026-11-26T09:04:57Z", "2026-11-26T10:04:57+01:00", "2026-11-26", "2026-11-26T11", "bla",
	} {
		f.Add(seed)
	}
	now := time.Unix(1795683900, 0)
	f.Fuzz(func(t *testing.T, value string) {
		got, err := Parse(value, now)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Fatalf("Parse(%q) error kind = %v, want invalid parameter", value, errdefs.KindOf(err))
			}
			return
		}
		if got.IsZero() {
			return
		}
		// Whatever was accepted is also accepted in the form the docker CLI
		// sends, seconds.nanoseconds, and means the same instant.
		wire := strconv.FormatInt(got.Unix(), 10) + "." + strconv.FormatInt(int64(got.Nanosecond())+1e9, 10)[1:]
		if got.Unix() == -1 {
			return // "-1.x" is dockerd's "no bound"
		}
		again, err := Parse(wire, now)
		if err != nil || !again.Equal(got) {
			t.Fatalf("Parse(%q) = %v; its wire form %q reads as %v, %v", value, got, wire, again, err)
		}
	})
}
