package auth

// Event names a security event: logged as event=<name> and counted in the
// metrics under that label. Every event is declared here, once.
type Event string

// The security events.
const (
	EventRegister        Event = "register"
	EventLogin           Event = "login"
	EventLoginFailed     Event = "login_failed"
	EventLoginThrottled  Event = "login_throttled"
	EventRefresh         Event = "refresh"
	EventRefreshReuse    Event = "refresh_reuse"
	EventLogout          Event = "logout"
	EventLogoutAll       Event = "logout_all"
	EventSessionRevoked  Event = "session_revoked"
	EventPasswordChanged Event = "password_changed"

	EventPasswordResetRequested Event = "password_reset_requested"
	EventPasswordReset          Event = "password_reset"
	EventEmailVerified          Event = "email_verified"
	EventEmailChangeRequested   Event = "email_change_requested"
	EventEmailChanged           Event = "email_changed"
	EventEmailLimited           Event = "email_limited"
)

// Events lists every event, for observers that count them from the start.
var Events = []Event{
	EventRegister, EventLogin, EventLoginFailed, EventLoginThrottled, EventRefresh,
	EventRefreshReuse, EventLogout, EventLogoutAll, EventSessionRevoked, EventPasswordChanged,
	EventPasswordResetRequested, EventPasswordReset, EventEmailVerified, EventEmailChangeRequested,
	EventEmailChanged, EventEmailLimited,
}
