package config_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/config"
	"github.com/gqlauth/gqlauth/internal/token"
)

func load(env map[string]string) (config.Config, error) {
	return config.Load(config.MapLookup(env))
}

func rsaPEMs(t testing.TB, bits int) (privB64, pubB64 string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	// PKCS #1, as the tutorial's keys are.
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return base64.StdEncoding.EncodeToString(priv), base64.StdEncoding.EncodeToString(pub)
}

func readB64(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestDefaults(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{
		"Port":               c.Port == 8000,
		"Embedded":           c.Embedded(),
		"DatabaseName":       c.DatabaseName == "fastapi",
		"DataDir":            c.DataDir == "./data",
		"JWTAlgorithm":       c.JWTAlgorithm == token.RS256,
		"SigningKey":         c.SigningKey == nil,
		"AccessTokenTTL":     c.AccessTokenTTL == 15*time.Minute,
		"RefreshTokenTTL":    c.RefreshTokenTTL == 60*time.Minute,
		"ClientOrigins":      len(c.ClientOrigins) == 1 && c.ClientOrigins[0] == "http://localhost:3000",
		"AppEnv":             c.AppEnv == config.EnvDevelopment,
		"Playground":         c.Playground,
		"Introspection":      c.Introspection,
		"JWTIssuer":          c.JWTIssuer == "http://localhost:8000",
		"RefreshReuseGrace":  c.RefreshReuseGrace == 5*time.Second,
		"SessionMaxLifetime": c.SessionMaxLifetime == 720*time.Hour,
		"CookieSecure":       !c.CookieSecure,
		"CookieDomain":       c.CookieDomain == "",
		"CookieSameSite":     c.CookieSameSite == http.SameSiteLaxMode,
		"DatabaseTimeout":    c.DatabaseTimeout == 5*time.Second,
		"ShutdownTimeout":    c.ShutdownTimeout == 10*time.Second,
		"BcryptCost":         c.BcryptCost == 12,
		"MaxBodyBytes":       c.MaxBodyBytes == 64<<10,
		"ComplexityLimit":    c.ComplexityLimit == 200,
		"DepthLimit":         c.DepthLimit == 20,
		"LoginFailures":      c.LoginFailuresPerAccount == 5,
		"RateLimitIP":        c.RateLimitIPPerMinute == 120,
		"BcryptConcurrency":  c.BcryptConcurrency == runtime.GOMAXPROCS(0),
		"BcryptQueue":        c.BcryptQueue == 64,
		"TrustedProxies":     len(c.TrustedProxies) == 0,
		"Addr":               c.Addr() == ":8000",
		"LogFormat":          c.LogFormat == "text",
		"LogLevel":           c.LogLevel == slog.LevelInfo,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("default %s wrong: %+v", name, c)
		}
	}
}

// TestTutorialEnv loads the tutorial's .env names (with a 2048-bit key in
// place of its 512-bit one).
func TestTutorialEnv(t *testing.T) {
	priv, pub := rsaPEMs(t, 2048)
	c, err := load(map[string]string{
		"MONGO_INITDB_ROOT_USERNAME": "admin",
		"MONGO_INITDB_ROOT_PASSWORD": "password123",
		"MONGO_INITDB_DATABASE":      "fastapi",
		"DATABASE_URL":               "mongodb://admin:password123@localhost:6000/fastapi?authSource=admin",
		"ACCESS_TOKEN_EXPIRES_IN":    "15",
		"REFRESH_TOKEN_EXPIRES_IN":   "60",
		"JWT_ALGORITHM":              "RS256",
		"CLIENT_ORIGIN":              "http://localhost:3000",
		"JWT_PRIVATE_KEY":            priv,
		"JWT_PUBLIC_KEY":             pub,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Embedded() || c.DatabaseName != "fastapi" || c.SigningKey == nil || c.SigningKey.Alg != token.RS256 || c.AccessTokenTTL != 15*time.Minute {
		t.Fatalf("config = %+v", c)
	}
}

func TestDatabaseNameFromURI(t *testing.T) {
	c, err := load(map[string]string{"DATABASE_URL": "mongodb://localhost:27017/authdb?authSource=admin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseName != "authdb" {
		t.Fatalf("DatabaseName = %q", c.DatabaseName)
	}
}

func TestDurations(t *testing.T) {
	c, err := load(map[string]string{"ACCESS_TOKEN_EXPIRES_IN": "30s", "REFRESH_TOKEN_EXPIRES_IN": "2h", "REFRESH_REUSE_GRACE": "0s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenTTL != 30*time.Second || c.RefreshTokenTTL != 2*time.Hour || c.RefreshReuseGrace != 0 {
		t.Fatalf("config = %+v", c)
	}
}

func TestProduction(t *testing.T) {
	priv, pub := rsaPEMs(t, 2048)
	c, err := load(map[string]string{"APP_ENV": "production", "JWT_PRIVATE_KEY": priv, "JWT_PUBLIC_KEY": pub})
	if err != nil {
		t.Fatal(err)
	}
	if c.Playground || c.Introspection || !c.CookieSecure {
		t.Fatalf("production defaults wrong: %+v", c)
	}
	c, err = load(map[string]string{"APP_ENV": "production", "JWT_PRIVATE_KEY": priv, "GRAPHQL_PLAYGROUND": "true"})
	if err != nil || !c.Playground {
		t.Fatalf("override: %v %+v", err, c)
	}
}

// TestInvalid checks that each bad value stops start-up with one line that
// names the variable.
func TestInvalid(t *testing.T) {
	// A 512-bit key like the tutorial's sample (Go no longer generates
	// them): a worthless test fixture.
	weakPriv := readB64(t, "testdata/insecure-512-private.pem")
	weakPub := readB64(t, "testdata/insecure-512-public.pem")
	priv, _ := rsaPEMs(t, 2048)
	_, otherPub := rsaPEMs(t, 2048)
	cases := []struct {
		name string
		env  map[string]string
		vr   string
		want string
	}{
		{"TutorialKey512", map[string]string{"JWT_PRIVATE_KEY": weakPriv, "JWT_PUBLIC_KEY": weakPub}, "JWT_PRIVATE_KEY", "512 bits"},
		{"KeyNotBase64", map[string]string{"JWT_PRIVATE_KEY": "%%%not base64"}, "JWT_PRIVATE_KEY", "base64"},
		{"KeyNotPEM", map[string]string{"JWT_PRIVATE_KEY": base64.StdEncoding.EncodeToString([]byte("hello"))}, "JWT_PRIVATE_KEY", "PEM"},
		{"AlgorithmDoesNotFitKey", map[string]string{"JWT_PRIVATE_KEY": priv, "JWT_ALGORITHM": "ES256"}, "JWT_PRIVATE_KEY", "RS256"},
		{"PublicKeyOfAnotherKey", map[string]string{"JWT_PRIVATE_KEY": priv, "JWT_PUBLIC_KEY": otherPub}, "JWT_PRIVATE_KEY", "does not belong"},
		{"OnlyPublicKey", map[string]string{"JWT_PUBLIC_KEY": otherPub}, "JWT_PRIVATE_KEY", "not"},
		{"ProductionWithoutKeys", map[string]string{"APP_ENV": "production"}, "JWT_PRIVATE_KEY", "production"},
		{"UnknownAlgorithm", map[string]string{"JWT_ALGORITHM": "HS256"}, "JWT_ALGORITHM", "HS256"},
		{"Port", map[string]string{"PORT": "http"}, "PORT", "whole number"},
		{"AccessTTL", map[string]string{"ACCESS_TOKEN_EXPIRES_IN": "soon"}, "ACCESS_TOKEN_EXPIRES_IN", "minutes"},
		{"AccessTTLZero", map[string]string{"ACCESS_TOKEN_EXPIRES_IN": "0"}, "ACCESS_TOKEN_EXPIRES_IN", "range"},
		{"GraceTooLong", map[string]string{"REFRESH_REUSE_GRACE": "11s"}, "REFRESH_REUSE_GRACE", "10s"},
		{"GraceNegative", map[string]string{"REFRESH_REUSE_GRACE": "-1s"}, "REFRESH_REUSE_GRACE", "range"},
		{"OriginWildcard", map[string]string{"CLIENT_ORIGIN": "*"}, "CLIENT_ORIGIN", "wildcard"},
		{"OriginWithPath", map[string]string{"CLIENT_ORIGIN": "http://localhost:3000/app"}, "CLIENT_ORIGIN", "origin"},
		{"OriginWithUser", map[string]string{"CLIENT_ORIGIN": "http://me@localhost:3000"}, "CLIENT_ORIGIN", "origin"},
		{"OriginsEmpty", map[string]string{"CLIENT_ORIGIN": " , "}, "CLIENT_ORIGIN", "no origin"},
		{"MinutesOverflow", map[string]string{"ACCESS_TOKEN_EXPIRES_IN": "307445735"}, "ACCESS_TOKEN_EXPIRES_IN", "too long"},
		{"SameSiteNoneWithoutSecure", map[string]string{"COOKIE_SAMESITE": "None"}, "COOKIE_SAMESITE", "COOKIE_SECURE"},
		{"SameSiteUnknown", map[string]string{"COOKIE_SAMESITE": "sometimes"}, "COOKIE_SAMESITE", "Lax"},
		{"CookieSecure", map[string]string{"COOKIE_SECURE": "yes please"}, "COOKIE_SECURE", "true or false"},
		{"BcryptCostLow", map[string]string{"BCRYPT_COST": "3"}, "BCRYPT_COST", "4 to 14"},
		{"BcryptCostProductionLow", map[string]string{"APP_ENV": "production", "JWT_PRIVATE_KEY": priv, "BCRYPT_COST": "4"}, "BCRYPT_COST", "10 to 14"},
		{"DatabaseURL", map[string]string{"DATABASE_URL": "postgres://u:secretpw@localhost/db"}, "DATABASE_URL", "MongoDB URI"},
		{"AppEnv", map[string]string{"APP_ENV": "staging"}, "APP_ENV", "staging"},
		{"Playground", map[string]string{"GRAPHQL_PLAYGROUND": "maybe"}, "GRAPHQL_PLAYGROUND", "true or false"},
		{"DatabaseTimeout", map[string]string{"DATABASE_TIMEOUT": "0s"}, "DATABASE_TIMEOUT", "range"},
		{"MaxBodyBytes", map[string]string{"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES", "whole number"},
		{"TrustedProxies", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, "TRUSTED_PROXIES", "proxy.local"},
		{"PreviousKeyNotPEM", map[string]string{"JWT_PREVIOUS_PUBLIC_KEYS": base64.StdEncoding.EncodeToString([]byte("nope"))}, "JWT_PREVIOUS_PUBLIC_KEYS", "key 1"},
		{"PreviousKeyWeak", map[string]string{"JWT_PREVIOUS_PUBLIC_KEYS": weakPub}, "JWT_PREVIOUS_PUBLIC_KEYS", "512 bits"},
		{"BcryptConcurrency", map[string]string{"BCRYPT_CONCURRENCY": "0"}, "BCRYPT_CONCURRENCY", "1 to"},
		{"DepthLimit", map[string]string{"GRAPHQL_DEPTH_LIMIT": "1"}, "GRAPHQL_DEPTH_LIMIT", "2 to"},
		{"LogFormat", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT", "text or json"},
		{"LogLevel", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL", "debug, info"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(c.env)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "configuration: "+c.vr+": ") || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error = %q, want one line about %s mentioning %q", msg, c.vr, c.want)
			}
			if strings.Contains(msg, "secretpw") {
				t.Fatalf("error echoes a secret: %q", msg)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := load(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1, ::1, 192.168.1.7/16, ::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "10.0.0.0/8 127.0.0.1/32 ::1/128 192.168.0.0/16 172.16.0.0/12" {
		t.Fatalf("TrustedProxies = %v", got)
	}
}

func TestOriginsLowerCased(t *testing.T) {
	c, err := load(map[string]string{"CLIENT_ORIGIN": "http://LocalHost:3000/, HTTPS://App.Example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ClientOrigins) != 2 || c.ClientOrigins[0] != "http://localhost:3000" || c.ClientOrigins[1] != "https://app.example.com" {
		t.Fatalf("origins = %q", c.ClientOrigins)
	}
}

func TestEnvironmentWinsOverDotEnv(t *testing.T) {
	env := config.MapLookup(map[string]string{"PORT": "9000"})
	dotenv := config.MapLookup(map[string]string{"PORT": "7000", "JWT_ISSUER": "https://auth.example"})
	c, err := config.Load(config.Chain(env, dotenv))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9000 || c.JWTIssuer != "https://auth.example" {
		t.Fatalf("Port=%d JWTIssuer=%q", c.Port, c.JWTIssuer)
	}
}

// TestEmail checks the e-mail settings: the defaults, and the refusals
// (each naming its variable, never echoing a credential).
func TestEmail(t *testing.T) {
	c, err := load(map[string]string{"CLIENT_ORIGIN": "https://app.example, http://localhost:3000"})
	if err != nil {
		t.Fatal(err)
	}
	e := c.Email
	if !e.Mailbox() || e.Port != 587 || e.TLS != config.EmailTLSStartTLS || e.From != "no-reply@localhost" || e.VerificationRequired ||
		e.LinkBase != "https://app.example" || e.VerifyTTL != 24*time.Hour || e.ResetTTL != time.Hour {
		t.Fatalf("defaults: %+v", e)
	}
	c, err = load(map[string]string{"EMAIL_HOST": "::1", "EMAIL_TLS": "none", "EMAIL_FROM": "Acme <no-reply@acme.example>",
		"EMAIL_VERIFICATION": "required", "VERIFY_EMAIL_EXPIRES_IN": "30", "RESET_PASSWORD_EXPIRES_IN": "2h", "EMAIL_LINK_BASE": "http://localhost:8000/"})
	if err != nil || c.Email.Host != "::1" || !c.Email.VerificationRequired || c.Email.VerifyTTL != 30*time.Minute || c.Email.ResetTTL != 2*time.Hour || c.Email.LinkBase != "http://localhost:8000" {
		t.Fatalf("%v %+v", err, c.Email)
	}
	priv, _ := rsaPEMs(t, 2048)
	prod := func(m map[string]string) map[string]string {
		m["APP_ENV"], m["JWT_PRIVATE_KEY"] = "production", priv
		return m
	}
	if _, err := load(prod(map[string]string{"EMAIL_HOST": "127.0.0.2", "EMAIL_TLS": "none"})); err != nil {
		t.Fatalf("clear text to a loopback relay in production: %v", err)
	}
	for name, tc := range map[string]struct {
		env map[string]string
		v   string
	}{
		"ClearTextToARemoteHostInProduction":  {prod(map[string]string{"EMAIL_HOST": "smtp.example.com", "EMAIL_TLS": "none"}), "EMAIL_TLS"},
		"VerificationWithoutSMTPInProduction": {prod(map[string]string{"EMAIL_VERIFICATION": "required"}), "EMAIL_VERIFICATION"},
		"UnknownTLS":                          {map[string]string{"EMAIL_TLS": "ssl"}, "EMAIL_TLS"},
		"UsernameWithoutPassword":             {map[string]string{"EMAIL_USERNAME": "u-secret"}, "EMAIL_USERNAME"},
		"PasswordWithoutUsername":             {map[string]string{"EMAIL_PASSWORD": "p-secret"}, "EMAIL_USERNAME"},
		"FromWithLineBreak":                   {map[string]string{"EMAIL_FROM": "a@b.c\r\nBcc: x@y.z"}, "EMAIL_FROM"},
		"FromNotAnAddress":                    {map[string]string{"EMAIL_FROM": "nobody"}, "EMAIL_FROM"},
		"HostWithPort":                        {map[string]string{"EMAIL_HOST": "smtp.example.com:587"}, "EMAIL_HOST"},
		"PortOutOfRange":                      {map[string]string{"EMAIL_PORT": "70000"}, "EMAIL_PORT"},
		"LinkBaseNotAURL":                     {map[string]string{"EMAIL_LINK_BASE": "app.example"}, "EMAIL_LINK_BASE"},
		"LinkBaseWithFragment":                {map[string]string{"EMAIL_LINK_BASE": "https://app.example/#x"}, "EMAIL_LINK_BASE"},
		"MissingCAFile":                       {map[string]string{"EMAIL_TLS_CA_FILE": "/nonexistent/ca.pem"}, "EMAIL_TLS_CA_FILE"},
		"MissingTemplatesDir":                 {map[string]string{"EMAIL_TEMPLATES_DIR": "/nonexistent"}, "EMAIL_TEMPLATES_DIR"},
		"VerificationUnknown":                 {map[string]string{"EMAIL_VERIFICATION": "maybe"}, "EMAIL_VERIFICATION"},
		"ResetTTLTooShort":                    {map[string]string{"RESET_PASSWORD_EXPIRES_IN": "10s"}, "RESET_PASSWORD_EXPIRES_IN"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.v+":") || strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %v, want one naming %s without the credential", err, tc.v)
			}
		})
	}
}
