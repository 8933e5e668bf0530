// Package config loads the server's configuration once: an optional .env
// file, then the environment (which wins), then defaults, then validation.
// A bad value is reported as one line naming the variable and the fix.
package config

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/token"
)

// Environments APP_ENV accepts.
const (
	EnvDevelopment = "development"
	EnvTest        = "test"
	EnvProduction  = "production"
)

// Config is the validated configuration.
type Config struct {
	Host string
	Port int

	// DatabaseURL is empty for the embedded database.
	DatabaseURL  string
	DatabaseName string
	DataDir      string

	JWTAlgorithm string
	// SigningKey is nil when no key is configured; outside production a
	// development key is then generated under DataDir.
	SigningKey *token.Key
	// PreviousKeys verify tokens signed before a key rotation, and are
	// published in the JWKS, until those tokens expire. Those given with
	// their private key (JWT_PREVIOUS_PRIVATE_KEYS) keep the refresh
	// tokens MAC'd under them valid too.
	PreviousKeys []*token.Key
	// RefreshTokenFormat is the format of the refresh tokens issued:
	// token.FormatMAC, or token.FormatJWT (an earlier release's, for a
	// rolling upgrade). Both are accepted either way.
	RefreshTokenFormat string
	JWTIssuer          string

	AccessTokenTTL     time.Duration
	RefreshTokenTTL    time.Duration
	RefreshReuseGrace  time.Duration
	SessionMaxLifetime time.Duration

	ClientOrigins []string
	AppEnv        string
	// LogFormat is "text" or "json"; LogLevel the lowest level logged.
	LogFormat     string
	LogLevel      slog.Level
	Playground    bool
	Introspection bool

	CookieSecure   bool
	CookieDomain   string
	CookieSameSite http.SameSite

	DatabaseTimeout time.Duration
	ShutdownTimeout time.Duration

	BcryptCost      int
	MaxBodyBytes    int64
	ComplexityLimit int
	DepthLimit      int

	// LoginFailuresPerAccount failures of one e-mail within 15 minutes
	// throttle it; 0 disables the throttle.
	LoginFailuresPerAccount int
	// RateLimitIPPerMinute bounds login, register and refresh per client
	// IP; 0 disables it.
	RateLimitIPPerMinute int
	BcryptConcurrency    int
	BcryptQueue          int
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// PprofAddr, when set, serves net/http/pprof there (debugging only).
	PprofAddr string
	// MetricsAddr, when set, serves /metrics there instead of on the main
	// listener.
	MetricsAddr string

	Email Email
}

// E-mail TLS modes (EMAIL_TLS).
const (
	EmailTLSStartTLS = "starttls" // required, not opportunistic
	EmailTLSImplicit = "tls"      // TLS from the first byte, usually port 465
	EmailTLSNone     = "none"     // plain text: a local catcher or relay
)

// E-mail verification modes (EMAIL_VERIFICATION).
const (
	VerificationOff      = "off"
	VerificationRequired = "required"
)

// Email is the e-mail configuration: the SMTP server (none means the
// development mailbox under DataDir/mail), the links' base, the templates
// and the links' lifetimes.
type Email struct {
	// Host is empty for the development mailbox.
	Host     string
	Port     int
	Username string
	Password string // never logged
	// From is the From header as given, e.g. "Acme <no-reply@acme.example>".
	From   string
	TLS    string
	CAFile string
	// VerificationRequired makes register create unverified users and send
	// them a verification e-mail; login, refresh and me refuse them.
	VerificationRequired bool
	// LinkBase is the base URL of the links, without a trailing slash.
	LinkBase     string
	TemplatesDir string
	VerifyTTL    time.Duration
	ResetTTL     time.Duration
}

// Auth returns the auth service's part of the configuration.
func (c *Config) Auth() auth.Config {
	return auth.Config{
		AccessTokenTTL:     c.AccessTokenTTL,
		RefreshTokenTTL:    c.RefreshTokenTTL,
		RefreshReuseGrace:  c.RefreshReuseGrace,
		SessionMaxLifetime: c.SessionMaxLifetime,
		LoginThrottle:      auth.DefaultLoginThrottle(c.LoginFailuresPerAccount),
		DatabaseTimeout:    c.DatabaseTimeout,
		RefreshTokenFormat: c.RefreshTokenFormat,
		Email: auth.EmailConfig{
			VerificationRequired: c.Email.VerificationRequired, LinkBase: c.Email.LinkBase,
			VerifyTTL: c.Email.VerifyTTL, ResetTTL: c.Email.ResetTTL,
		},
	}
}

// Mailbox reports whether e-mails go to the development mailbox.
func (e *Email) Mailbox() bool { return e.Host == "" }

// Production reports whether APP_ENV is production.
func (c *Config) Production() bool { return c.AppEnv == EnvProduction }

// Embedded reports whether the embedded database is used.
func (c *Config) Embedded() bool { return c.DatabaseURL == "" }

// Addr returns the listen address.
func (c *Config) Addr() string { return c.Host + ":" + strconv.Itoa(c.Port) }

// LocalURL returns the server's base URL as a process on the same machine
// reaches it (the image's health check): loopback when the server listens
// on every interface.
func (c *Config) LocalURL() string {
	host := c.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(c.Port))
}

// Lookup finds a configuration variable, like os.LookupEnv.
type Lookup func(name string) (string, bool)

// Chain returns a Lookup that tries each lookup in order: pass the real
// environment first and a .env file's values after, so the environment wins.
func Chain(lookups ...Lookup) Lookup {
	return func(name string) (string, bool) {
		for _, l := range lookups {
			if v, ok := l(name); ok {
				return v, true
			}
		}
		return "", false
	}
}

// MapLookup returns a Lookup over a map (a parsed .env file, or a test's
// settings).
func MapLookup(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// Error is a configuration error: the variable and what is wrong with it.
type Error struct {
	Var     string
	Problem string
}

func (e *Error) Error() string { return "configuration: " + e.Var + ": " + e.Problem }

// loader reads variables and records the first error.
type loader struct {
	lookup Lookup
	err    *Error
}

func (l *loader) fail(name, format string, args ...any) {
	if l.err == nil {
		l.err = &Error{Var: name, Problem: fmt.Sprintf(format, args...)}
	}
}

func (l *loader) str(name, def string) string {
	v, ok := l.lookup(name)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return def
	}
	return v
}

func (l *loader) isSet(name string) bool {
	v, ok := l.lookup(name)
	return ok && strings.TrimSpace(v) != ""
}

func (l *loader) integer(name string, def, min, max int) int {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		l.fail(name, "%q is not a whole number from %d to %d", s, min, max)
		return def
	}
	return n
}

func (l *loader) boolean(name string, def bool) bool {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		l.fail(name, "%q is not true or false", s)
		return def
	}
	return b
}

// maxMinutes is the largest number of minutes a time.Duration holds.
const maxMinutes = int64(1<<63-1) / int64(time.Minute)

// duration reads a Go duration ("30s", "1h"); when minutes is true a whole
// number means minutes, as in the tutorial's .env.
func (l *loader) duration(name string, def time.Duration, minutes bool, min, max time.Duration) time.Duration {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	var d time.Duration
	if n, err := strconv.Atoi(s); err == nil && minutes {
		if n > int(maxMinutes) || n < -int(maxMinutes) {
			l.fail(name, "%q minutes is too long", s)
			return def
		}
		d = time.Duration(n) * time.Minute
	} else if d, err = time.ParseDuration(s); err != nil {
		if minutes {
			l.fail(name, "%q is neither a number of minutes nor a duration such as 30s or 2h", s)
		} else {
			l.fail(name, "%q is not a duration such as 5s or 2h", s)
		}
		return def
	}
	if d < min || (max > 0 && d > max) {
		if max > 0 {
			l.fail(name, "%s is out of range: it must be from %s to %s", d, min, max)
		} else {
			l.fail(name, "%s is out of range: it must be at least %s", d, min)
		}
		return def
	}
	return d
}

// Load reads, defaults and validates the configuration.
func Load(lookup Lookup) (Config, error) {
	l := &loader{lookup: lookup}
	c := Config{}

	c.AppEnv = strings.ToLower(l.str("APP_ENV", EnvDevelopment))
	switch c.AppEnv {
	case EnvDevelopment, EnvTest, EnvProduction:
	default:
		l.fail("APP_ENV", "%q is not one of development, test, production", c.AppEnv)
	}
	prod := c.AppEnv == EnvProduction

	c.LogFormat = strings.ToLower(l.str("LOG_FORMAT", "text"))
	if c.LogFormat != "text" && c.LogFormat != "json" {
		l.fail("LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	if err := c.LogLevel.UnmarshalText([]byte(l.str("LOG_LEVEL", "info"))); err != nil {
		l.fail("LOG_LEVEL", "%q is not one of debug, info, warn, error", l.str("LOG_LEVEL", ""))
	}

	c.Host = l.str("HOST", "")
	c.Port = l.integer("PORT", 8000, 0, 65535)

	c.DatabaseURL = l.str("DATABASE_URL", "")
	c.DatabaseName = l.str("MONGO_INITDB_DATABASE", "")
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") || u.Host == "" {
			// The URL may hold a password: do not echo it.
			l.fail("DATABASE_URL", "not a MongoDB URI; expected mongodb://user:password@host:port/database")
		} else if c.DatabaseName == "" {
			c.DatabaseName = strings.Trim(u.Path, "/")
		}
	}
	if c.DatabaseName == "" {
		c.DatabaseName = "fastapi"
	}
	if strings.ContainsAny(c.DatabaseName, `/\. "$`) {
		l.fail("MONGO_INITDB_DATABASE", "%q is not a valid database name", c.DatabaseName)
	}
	c.DataDir = l.str("DATA_DIR", "./data")

	c.JWTAlgorithm = l.str("JWT_ALGORITHM", token.RS256)
	switch c.JWTAlgorithm {
	case token.RS256, token.ES256, token.EdDSA:
	default:
		l.fail("JWT_ALGORITHM", "%q is not one of RS256, ES256, EdDSA", c.JWTAlgorithm)
	}
	c.SigningKey = l.signingKey(c.JWTAlgorithm, prod)
	c.PreviousKeys = append(l.previousKeys("JWT_PREVIOUS_PRIVATE_KEYS", true), l.previousKeys("JWT_PREVIOUS_PUBLIC_KEYS", false)...)
	switch c.RefreshTokenFormat = strings.ToLower(l.str("REFRESH_TOKEN_FORMAT", token.FormatMAC)); c.RefreshTokenFormat {
	case token.FormatMAC, token.FormatJWT:
	default:
		l.fail("REFRESH_TOKEN_FORMAT", "%q is not mac or jwt", c.RefreshTokenFormat)
	}
	c.JWTIssuer = l.str("JWT_ISSUER", "http://localhost:8000")

	c.AccessTokenTTL = l.duration("ACCESS_TOKEN_EXPIRES_IN", 15*time.Minute, true, time.Second, 0)
	c.RefreshTokenTTL = l.duration("REFRESH_TOKEN_EXPIRES_IN", 60*time.Minute, true, time.Second, 0)
	c.RefreshReuseGrace = l.duration("REFRESH_REUSE_GRACE", 5*time.Second, false, 0, 10*time.Second)
	c.SessionMaxLifetime = l.duration("SESSION_MAX_LIFETIME", 720*time.Hour, false, time.Second, 0)

	c.ClientOrigins = l.origins("CLIENT_ORIGIN", "http://localhost:3000")

	c.Playground = l.boolean("GRAPHQL_PLAYGROUND", !prod)
	c.Introspection = l.boolean("GRAPHQL_INTROSPECTION", !prod)

	c.CookieSecure = l.boolean("COOKIE_SECURE", prod)
	c.CookieDomain = l.str("COOKIE_DOMAIN", "")
	if strings.ContainsAny(c.CookieDomain, " ;,/:") {
		l.fail("COOKIE_DOMAIN", "%q is not a domain name", c.CookieDomain)
	}
	switch s := strings.ToLower(l.str("COOKIE_SAMESITE", "Lax")); s {
	case "lax":
		c.CookieSameSite = http.SameSiteLaxMode
	case "strict":
		c.CookieSameSite = http.SameSiteStrictMode
	case "none":
		c.CookieSameSite = http.SameSiteNoneMode
		if !c.CookieSecure {
			l.fail("COOKIE_SAMESITE", "None requires COOKIE_SECURE=true (browsers drop SameSite=None cookies without Secure)")
		}
	default:
		l.fail("COOKIE_SAMESITE", "%q is not one of Lax, Strict, None", s)
	}

	c.DatabaseTimeout = l.duration("DATABASE_TIMEOUT", 5*time.Second, false, 10*time.Millisecond, 0)
	c.ShutdownTimeout = l.duration("SHUTDOWN_TIMEOUT", 10*time.Second, false, 0, 0)

	minCost := 4
	if prod {
		minCost = 10
	}
	c.BcryptCost = l.integer("BCRYPT_COST", 12, minCost, 14)
	c.MaxBodyBytes = int64(l.integer("MAX_BODY_BYTES", 64<<10, 1024, 1<<30))
	c.ComplexityLimit = l.integer("GRAPHQL_COMPLEXITY_LIMIT", 200, 1, 1_000_000)
	c.DepthLimit = l.integer("GRAPHQL_DEPTH_LIMIT", 20, 2, 1000)
	c.LoginFailuresPerAccount = l.integer("LOGIN_FAILURES_PER_ACCOUNT", 5, 0, 1000)
	c.RateLimitIPPerMinute = l.integer("RATE_LIMIT_IP_PER_MINUTE", 120, 0, 1_000_000)
	// GOMAXPROCS, unlike NumCPU, respects a container's CPU limit.
	c.BcryptConcurrency = l.integer("BCRYPT_CONCURRENCY", runtime.GOMAXPROCS(0), 1, 1024)
	c.BcryptQueue = l.integer("BCRYPT_QUEUE", 64, 0, 100_000)
	c.TrustedProxies = l.prefixes("TRUSTED_PROXIES")
	c.MetricsAddr = l.str("METRICS_ADDR", "")
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			l.fail("METRICS_ADDR", "%q is not host:port, such as 127.0.0.1:9090", c.MetricsAddr)
		}
	}
	c.PprofAddr = l.str("DEBUG_PPROF_ADDR", "")
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			l.fail("DEBUG_PPROF_ADDR", "%q must be a loopback address such as 127.0.0.1:6060 (profiles expose internals)", c.PprofAddr)
		}
	}

	c.Email = l.email(prod, c.ClientOrigins)

	if l.err != nil {
		return Config{}, l.err
	}
	return c, nil
}

// email reads the EMAIL_* variables and the links' lifetimes.
func (l *loader) email(prod bool, origins []string) Email {
	e := Email{
		Host:         l.str("EMAIL_HOST", ""),
		Port:         l.integer("EMAIL_PORT", 587, 1, 65535),
		Username:     l.str("EMAIL_USERNAME", ""),
		TemplatesDir: l.str("EMAIL_TEMPLATES_DIR", ""),
		CAFile:       l.str("EMAIL_TLS_CA_FILE", ""),
	}
	// A password may begin or end with spaces: take it as given.
	e.Password, _ = l.lookup("EMAIL_PASSWORD")
	if _, err := netip.ParseAddr(strings.Trim(e.Host, "[]")); err == nil {
		e.Host = strings.Trim(e.Host, "[]")
	} else if strings.ContainsAny(e.Host, " /@:[]") || strings.ContainsFunc(e.Host, unicode.IsControl) {
		l.fail("EMAIL_HOST", "%q is not a host name or IP address (the port goes in EMAIL_PORT)", e.Host)
	}
	if (e.Username == "") != (e.Password == "") {
		// Neither value is echoed: they are credentials.
		l.fail("EMAIL_USERNAME", "set both EMAIL_USERNAME and EMAIL_PASSWORD, or neither")
	}
	e.From = l.str("EMAIL_FROM", "no-reply@localhost")
	if a, err := mail.ParseAddress(e.From); err != nil || strings.ContainsAny(e.From, "\r\n") || a.Address == "" {
		l.fail("EMAIL_FROM", "%q is not an address such as no-reply@example.com or \"Acme <no-reply@acme.example>\"", e.From)
	}
	switch e.TLS = strings.ToLower(l.str("EMAIL_TLS", EmailTLSStartTLS)); e.TLS {
	case EmailTLSStartTLS, EmailTLSImplicit:
	case EmailTLSNone:
		if prod && e.Host != "" && !loopbackHost(e.Host) {
			l.fail("EMAIL_TLS", "none sends passwords and links in clear text: in production it is allowed only for localhost or a loopback address")
		}
	default:
		l.fail("EMAIL_TLS", "%q is not one of starttls, tls, none", e.TLS)
	}
	if e.CAFile != "" {
		if _, err := os.Stat(e.CAFile); err != nil {
			l.fail("EMAIL_TLS_CA_FILE", "cannot read %q: %v", e.CAFile, errors.Unwrap(err))
		}
	}
	switch v := strings.ToLower(l.str("EMAIL_VERIFICATION", VerificationOff)); v {
	case VerificationOff:
	case VerificationRequired:
		e.VerificationRequired = true
		if prod && e.Host == "" {
			l.fail("EMAIL_VERIFICATION", "required in production needs an SMTP server: set EMAIL_HOST (the development mailbox delivers to nobody)")
		}
	default:
		l.fail("EMAIL_VERIFICATION", "%q is not off or required", v)
	}
	def := ""
	if len(origins) > 0 {
		def = origins[0]
	}
	base := strings.TrimRight(l.str("EMAIL_LINK_BASE", def), "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		l.fail("EMAIL_LINK_BASE", "%q is not a base URL such as https://app.example.com", base)
	}
	e.LinkBase = base
	if e.TemplatesDir != "" {
		if st, err := os.Stat(e.TemplatesDir); err != nil || !st.IsDir() {
			l.fail("EMAIL_TEMPLATES_DIR", "%q is not a readable directory", e.TemplatesDir)
		}
	}
	e.VerifyTTL = l.duration("VERIFY_EMAIL_EXPIRES_IN", 24*time.Hour, true, time.Minute, 30*24*time.Hour)
	e.ResetTTL = l.duration("RESET_PASSWORD_EXPIRES_IN", time.Hour, true, time.Minute, 7*24*time.Hour)
	return e
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

func (l *loader) origins(name, def string) []string {
	var out []string
	for _, o := range strings.Split(l.str(name, def), ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if o == "*" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			l.fail(name, "%q is not an origin such as http://localhost:3000 (a wildcard cannot be used with cookies)", o)
			return nil
		}
		// Browsers send origins in lower case; the cross-origin check
		// compares exactly.
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	if len(out) == 0 {
		l.fail(name, "no origin given; set at least one, e.g. http://localhost:3000")
	}
	return out
}

// prefixes reads a comma-separated list of IP addresses and CIDR ranges.
func (l *loader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range strings.Split(l.str(name, ""), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96) // peers are compared unmapped
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			l.fail(name, "%q is neither an IP address nor a CIDR range such as 10.0.0.0/8", item)
			return nil
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// signingKey parses JWT_PRIVATE_KEY and JWT_PUBLIC_KEY (base64 of PEM, as in
// the tutorial's .env; a plain PEM is accepted too).
func (l *loader) signingKey(alg string, prod bool) *token.Key {
	if !l.isSet("JWT_PRIVATE_KEY") {
		switch {
		case l.isSet("JWT_PUBLIC_KEY"):
			l.fail("JWT_PRIVATE_KEY", "JWT_PUBLIC_KEY is set but JWT_PRIVATE_KEY is not; set both (see README)")
		case prod:
			l.fail("JWT_PRIVATE_KEY", "required when APP_ENV=production (generated keys are for development only); see README for the openssl commands")
		}
		return nil
	}
	privPEM, ok := l.pem("JWT_PRIVATE_KEY")
	if !ok {
		return nil
	}
	priv, err := token.ParsePrivateKeyPEM(privPEM)
	if err != nil {
		l.fail("JWT_PRIVATE_KEY", "%v", err)
		return nil
	}
	var pub crypto.PublicKey
	if l.isSet("JWT_PUBLIC_KEY") {
		pubPEM, ok := l.pem("JWT_PUBLIC_KEY")
		if !ok {
			return nil
		}
		if pub, err = token.ParsePublicKeyPEM(pubPEM); err != nil {
			l.fail("JWT_PUBLIC_KEY", "%v", err)
			return nil
		}
	}
	key, err := token.NewKey(alg, priv, pub)
	if err != nil {
		l.fail("JWT_PRIVATE_KEY", "%v", err)
		return nil
	}
	return key
}

// previousKeys reads comma-separated base64 PEM keys, public ones or, when
// private is set, private ones; each key's type gives its algorithm.
func (l *loader) previousKeys(name string, private bool) []*token.Key {
	var out []*token.Key
	for i, item := range strings.Split(l.str(name, ""), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		data, ok := l.pemValue(name, item)
		if !ok {
			return nil
		}
		var (
			priv crypto.Signer
			pub  crypto.PublicKey
			err  error
		)
		if private {
			if priv, err = token.ParsePrivateKeyPEM(data); err == nil {
				pub = priv.Public()
			}
		} else {
			pub, err = token.ParsePublicKeyPEM(data)
		}
		if err != nil {
			l.fail(name, "key %d: %v", i+1, err)
			return nil
		}
		alg, err := token.AlgForKey(pub)
		if err != nil {
			l.fail(name, "key %d: %v", i+1, err)
			return nil
		}
		k, err := token.NewKey(alg, priv, pub)
		if err != nil {
			l.fail(name, "key %d: %v", i+1, err)
			return nil
		}
		out = append(out, k)
	}
	return out
}

func (l *loader) pem(name string) ([]byte, bool) {
	return l.pemValue(name, l.str(name, ""))
}

// pemValue decodes a PEM given as base64 (or as plain PEM text).
func (l *loader) pemValue(name, v string) ([]byte, bool) {
	if strings.HasPrefix(v, "-----BEGIN") {
		return []byte(strings.ReplaceAll(v, `\n`, "\n")), true
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		l.fail(name, "not valid base64 (expected the base64 of a PEM file: base64 -w0 < key.pem)")
		return nil, false
	}
	return b, true
}
