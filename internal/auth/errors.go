package auth

import (
	"errors"
	"fmt"
)

// Error codes: every code a client can see in a GraphQL error's
// extensions.code, in one table. Clients switch on these, never on
// messages.
const (
	// Errors of an operation that ran: the answer is HTTP 200.
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN" // also the cross-origin 403
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeRateLimited     = "RATE_LIMITED" // with extensions.retryAfter and Retry-After
	CodeInternal        = "INTERNAL_SERVER_ERROR"

	// Request errors, answered before an operation runs.
	CodeBadRequest      = "BAD_REQUEST"       // 400: not JSON, a batch, another content type; 406: a mutation over GET
	CodePayloadTooLarge = "PAYLOAD_TOO_LARGE" // 413: over MAX_BODY_BYTES
	// gqlgen's own (the same strings as its errcode package), 422.
	CodeParseFailed             = "GRAPHQL_PARSE_FAILED"
	CodeValidationFailed        = "GRAPHQL_VALIDATION_FAILED" // validation, depth, selections, variables
	CodeComplexityLimitExceeded = "COMPLEXITY_LIMIT_EXCEEDED"
)

// Error is an error a client may see: a stable code, a human message, and,
// for input errors, the schema name of the offending input field.
//
// Anything that is not an *Error is internal: the GraphQL layer masks it as
// CodeInternal and logs it.
type Error struct {
	Code    string
	Message string
	// Field is the input field's schema name for CodeBadUserInput.
	Field string
	// RetryAfter is the whole number of seconds to wait for CodeRateLimited.
	RetryAfter int
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InputError returns a CodeBadUserInput error naming the input field.
func InputError(field, message string) *Error {
	return &Error{Code: CodeBadUserInput, Message: message, Field: field}
}

// ErrorCode returns the client-visible code of err: the code of the first
// *Error in its chain, or CodeInternal for anything else (including nil-free
// unknown errors).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// The errors clients see. Wrong e-mail and wrong password share one error so
// that login does not tell which e-mails exist.
var (
	ErrNotLoggedIn         = Errorf(CodeUnauthenticated, "You are not logged in")
	ErrInvalidToken        = Errorf(CodeUnauthenticated, "Token is invalid or has expired")
	ErrInvalidCredentials  = Errorf(CodeUnauthenticated, "Incorrect email or password")
	ErrMissingRefreshToken = Errorf(CodeUnauthenticated, "Please provide refresh token")
	ErrRefreshTokenInvalid = Errorf(CodeUnauthenticated, "Could not refresh access token")
	ErrUserGone            = Errorf(CodeUnauthenticated, "User no longer exist")
	ErrNotVerified         = Errorf(CodeForbidden, "Please verify your account")
	ErrEmailTaken          = Errorf(CodeConflict, "Account already exist")
	ErrServiceUnavailable  = Errorf(CodeInternal, "Service temporarily unavailable, please try again")
)

// Storage errors that are not for clients. Store implementations return these
// (possibly wrapped); the service turns them into client errors where a
// client can act on them.
var (
	// ErrNotFound means the requested document does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable means the database could not be reached in time. It is
	// wrapped as ErrServiceUnavailable before it reaches a client.
	ErrUnavailable = errors.New("database unavailable")
)
