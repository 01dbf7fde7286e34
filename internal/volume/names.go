package volume

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"skiffd/internal/errdefs"
)

// DefaultDriver is the only volume driver skiffd has.
const DefaultDriver = "local"

// LocalScope is the Scope of every local volume.
const LocalScope = "local"

// AnonymousLabel marks a volume created without a name (by `-v /path`, an
// image VOLUME, or `docker volume create` without a name). Since API 1.42
// prune removes only volumes carrying it unless asked for all.
const AnonymousLabel = "com.docker.volume.anonymous"

// nameChars is how dockerd describes the characters a volume name may use.
const nameChars = `[a-zA-Z0-9][a-zA-Z0-9_.-]`

// ValidateName checks a volume name against dockerd's local-driver rule: at
// least two characters, the first alphanumeric, the rest alphanumeric or
// one of "_.-". The name becomes a directory under the volumes root, so the
// rule also keeps "/", "..", and empty names out. Errors are
// InvalidParameter with dockerd's wording (callers add "create <name>: ").
func ValidateName(name string) error {
	if len(name) == 1 {
		return errdefs.InvalidParameter(errors.New("volume name is too short, names should be at least two alphanumeric characters"))
	}
	if !validName(name) {
		return errdefs.InvalidParameter(fmt.Errorf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, nameChars))
	}
	return nil
}

func validName(name string) bool {
	if len(name) < 2 || !isAlnum(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// NewAnonymousName returns a random 64-hex-digit name, the form dockerd
// gives anonymous volumes.
func NewAnonymousName() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
