package reference

import (
	"errors"
	"strings"
	"testing"

	"skiffd/internal/errdefs"
)

func TestParseDigest(t *testing.T) {
	tests := []struct {
		in      string
		wantErr error
	}{
		{digestA, nil},
		{digestB, nil},
		{"", ErrDigestInvalidFormat},
		{hexA, ErrDigestInvalidFormat},
		{":" + hexA, ErrDigestInvalidFormat},
		{"sha256:", ErrDigestInvalidFormat},
		{"sha256:" + strings.ToUpper(hexA), ErrDigestInvalidFormat},
		{"sha256:" + strings.Repeat("g", 64), ErrDigestInvalidFormat},
		{"sha256:" + hexA[:63], ErrDigestInvalidLength},
		{"sha256:" + hexA + "f", ErrDigestInvalidLength},
		{"sha256:abc", ErrDigestInvalidLength},
		{"sha512:" + strings.Repeat("f", 128), ErrDigestUnsupported},
		{"sha384:" + strings.Repeat("f", 96), ErrDigestUnsupported},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", ErrDigestUnsupported},
		{"sha256+b64:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", ErrDigestUnsupported},
		{"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", ErrDigestUnsupported},
		{"SHA256:" + hexA, ErrDigestInvalidFormat},
		{"sha-:" + hexA, ErrDigestInvalidFormat},
		{"sha..256:" + hexA, ErrDigestInvalidFormat},
		{"foo:bar:baz", ErrDigestInvalidFormat},
		{"foo:b/r", ErrDigestInvalidFormat},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDigest(tt.in)
			if err != tt.wantErr {
				t.Fatalf("ParseDigest(%q) = %q, %v; want error %v", tt.in, d, err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidParameter) {
					t.Errorf("ParseDigest(%q) error kind = %v, want invalid parameter", tt.in, errdefs.KindOf(err))
				}
				return
			}
			if d.String() != tt.in || d.Algorithm() != "sha256" || d.Encoded() != tt.in[len("sha256:"):] {
				t.Errorf("ParseDigest(%q) = %q (%q, %q), want it split at the ':'", tt.in, d, d.Algorithm(), d.Encoded())
			}
		})
	}
}

func TestDigestOf(t *testing.T) {
	// The sha256 of the empty input is a well-known constant.
	const empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := DigestOf(nil); got != empty {
		t.Errorf("DigestOf(nil) = %q, want %q", got, empty)
	}
	if _, err := ParseDigest(string(DigestOf([]byte("skiffd")))); err != nil {
		t.Errorf("ParseDigest(DigestOf(skiffd)) error = %v, want nil", err)
	}
}

func TestIDHelpers(t *testing.T) {
	tests := []struct {
		in               string
		full, prefixable bool
		short            string
	}{
		{hexB, true, true, "462dad7a438b"},
		{digestB, false, true, "462dad7a438b"},
		{"462dad", false, true, "462dad"},
		{"sha256:462dad", false, true, "462dad"},
		{"4", false, true, "4"},
		{"", false, false, ""},
		{"sha256:", false, false, ""},
		{"462DAD", false, false, "462DAD"},
		{"462dag", false, false, "462dag"},
		{hexB + "0", false, false, "462dad7a438b"},
		{"sha256:sha256:462dad", false, false, "sha256:462da"},
		{"busybox", false, false, "busybox"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := IsFullID(tt.in); got != tt.full {
				t.Errorf("IsFullID(%q) = %v, want %v", tt.in, got, tt.full)
			}
			if got := IsIDPrefix(tt.in); got != tt.prefixable {
				t.Errorf("IsIDPrefix(%q) = %v, want %v", tt.in, got, tt.prefixable)
			}
			if got := ShortID(tt.in); got != tt.short {
				t.Errorf("ShortID(%q) = %q, want %q", tt.in, got, tt.short)
			}
		})
	}
}

func TestIDHasPrefix(t *testing.T) {
	tests := []struct {
		id, prefix string
		want       bool
	}{
		{digestB, "462dad", true},
		{digestB, "sha256:462d", true},
		{digestB, "sha256:", true},
		{digestB, digestB, true},
		{hexB, "462dad", true},
		{digestB, "busybox", false},
		{digestB, "62dad", false},
		{hexB, "sha256:462dad", false},
	}
	for _, tt := range tests {
		if got := IDHasPrefix(tt.id, tt.prefix); got != tt.want {
			t.Errorf("IDHasPrefix(%q, %q) = %v, want %v", tt.id, tt.prefix, got, tt.want)
		}
	}
}
