package distribution

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"skiffd/internal/errdefs"
)

// AuthConfig holds the credentials a client sends to dockerd, in the JSON
// shape of the X-Registry-Auth header and of the POST /auth body.
type AuthConfig struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Auth is base64("username:password"), the form of the CLI's config
	// file; it is used when Username and Password are empty.
	Auth  string `json:"auth,omitempty"`
	Email string `json:"email,omitempty"`
	// ServerAddress names the registry ("https://index.docker.io/v1/",
	// "127.0.0.1:5000").
	ServerAddress string `json:"serveraddress,omitempty"`
	// IdentityToken is an OAuth2 refresh token a previous login returned;
	// with it the client asks for tokens with the OAuth2 refresh_token grant.
	IdentityToken string `json:"identitytoken,omitempty"`
	// RegistryToken is a bearer token sent to the registry as it is.
	RegistryToken string `json:"registrytoken,omitempty"`
}

// DecodeAuthConfig decodes the X-Registry-Auth header: base64url of the JSON
// AuthConfig. An empty header is no credentials, and no error. As dockerd,
// the error is an errdefs.InvalidParameter "invalid X-Registry-Auth header:
// ...". Missing base64 padding is tolerated.
func DecodeAuthConfig(header string) (AuthConfig, error) {
	if header == "" {
		return AuthConfig{}, nil
	}
	s := strings.TrimRight(header, "=")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return AuthConfig{}, errdefs.InvalidParameter(fmt.Errorf("invalid X-Registry-Auth header: %w", err))
	}
	var ac AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		return AuthConfig{}, errdefs.InvalidParameter(fmt.Errorf("invalid X-Registry-Auth header: %w", err))
	}
	return ac, nil
}

// EncodeAuthConfig is the inverse of DecodeAuthConfig, as the CLI encodes.
func EncodeAuthConfig(ac AuthConfig) string {
	b, _ := json.Marshal(ac)
	return base64.URLEncoding.EncodeToString(b)
}

// credentials returns the username and password of ac, decoding Auth when
// the plain fields are empty.
func (ac AuthConfig) credentials() (user, pass string) {
	if ac.Username != "" || ac.Password != "" || ac.Auth == "" {
		return ac.Username, ac.Password
	}
	b, err := base64.StdEncoding.DecodeString(ac.Auth)
	if err != nil {
		return "", ""
	}
	user, pass, _ = strings.Cut(string(b), ":")
	return user, pass
}
