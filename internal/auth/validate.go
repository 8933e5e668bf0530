package auth

import (
	"net/mail"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits from the contract.
const (
	MaxEmailBytes     = 254
	MinPasswordBytes  = 8
	MaxPasswordBytes  = 72 // bcrypt ignores every byte after the 72nd
	MaxNameChars      = 100
	MaxPhotoURLBytes  = 2048
	emailFieldName    = "email"
	passwordFieldName = "password"
)

// NormalizeEmail trims and lower-cases an e-mail address. Every use of an
// e-mail (register, login, look-ups) goes through it.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// ValidateEmail checks a normalised e-mail: at most 254 bytes, no spaces or
// control characters, and net/mail.ParseAddress returns it unchanged with no
// display name.
func ValidateEmail(email string) error {
	if email == "" {
		return InputError(emailFieldName, "Email is required")
	}
	if len(email) > MaxEmailBytes || !utf8.ValidString(email) {
		return InputError(emailFieldName, "Email is not a valid address")
	}
	for _, r := range email {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return InputError(emailFieldName, "Email is not a valid address")
		}
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return InputError(emailFieldName, "Email is not a valid address")
	}
	return nil
}

// ValidatePassword checks a password's length in bytes (not characters).
func ValidatePassword(field, password string) error {
	switch {
	case len(password) < MinPasswordBytes:
		return InputError(field, "Password must be at least 8 bytes")
	case len(password) > MaxPasswordBytes:
		return InputError(field, "Password must be at most 72 bytes")
	}
	return nil
}

// ValidateName trims a name and checks it is 1–100 characters of valid UTF-8.
func ValidateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", InputError("name", "Name is required")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameChars {
		return "", InputError("name", "Name must be at most 100 characters")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", InputError("name", "Name must not contain control characters")
		}
	}
	return name, nil
}

// ValidatePhoto checks an optional photo URL: empty, or an absolute http(s)
// URL of at most 2,048 bytes.
func ValidatePhoto(photo string) error {
	if photo == "" {
		return nil
	}
	if len(photo) > MaxPhotoURLBytes {
		return InputError("photo", "Photo must be a URL of at most 2048 bytes")
	}
	u, err := url.Parse(photo)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return InputError("photo", "Photo must be an absolute http or https URL")
	}
	return nil
}

// RegisterInput is what a client sends to register.
type RegisterInput struct {
	Name            string
	Email           string
	Password        string
	PasswordConfirm string
	Photo           string
}

// Validate normalises the input in place and checks every rule, returning
// the first violation as a CodeBadUserInput error.
func (in *RegisterInput) Validate() error {
	name, err := ValidateName(in.Name)
	if err != nil {
		return err
	}
	in.Name = name
	in.Email = NormalizeEmail(in.Email)
	if err := ValidateEmail(in.Email); err != nil {
		return err
	}
	if err := ValidatePassword(passwordFieldName, in.Password); err != nil {
		return err
	}
	if in.Password != in.PasswordConfirm {
		return InputError("passwordConfirm", "Passwords do not match")
	}
	in.Photo = strings.TrimSpace(in.Photo)
	return ValidatePhoto(in.Photo)
}
