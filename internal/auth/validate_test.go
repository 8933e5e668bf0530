package auth_test

import (
	"strings"
	"testing"

	"github.com/gqlauth/gqlauth/internal/auth"
)

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"  Ann@Example.COM \t": "ann@example.com",
		"bob@example.com":      "bob@example.com",
		"":                     "",
	} {
		if got := auth.NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateEmail(t *testing.T) {
	valid := []string{
		"ann@example.com",
		"a.b+tag@sub.example.co.uk",
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com", // 254 bytes
	}
	for _, e := range valid {
		if err := auth.ValidateEmail(e); err != nil {
			t.Errorf("ValidateEmail(%q) = %v, want nil", e, err)
		}
	}
	invalid := []string{
		"",
		"ann",
		"ann@",
		"@example.com",
		"ann example@example.com",
		"Ann <ann@example.com>",
		"ann@example.com\n",
		"ann\x00@example.com",
		"\"a b\"@example.com",
		"ann@example.com, bob@example.com",
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", // 255 bytes
		"ann@ex\xffample.com",
	}
	for _, e := range invalid {
		err := auth.ValidateEmail(e)
		assertInputError(t, err, "email")
	}
}

func TestRegisterInputValidate(t *testing.T) {
	ok := func() auth.RegisterInput {
		return auth.RegisterInput{Name: " Ann ", Email: " Ann@Example.com", Password: "password1", PasswordConfirm: "password1"}
	}
	t.Run("OK", func(t *testing.T) {
		in := ok()
		if err := in.Validate(); err != nil {
			t.Fatal(err)
		}
		if in.Name != "Ann" || in.Email != "ann@example.com" || in.Photo != "" {
			t.Fatalf("not normalised: %+v", in)
		}
	})
	cases := []struct {
		name  string
		edit  func(*auth.RegisterInput)
		field string
	}{
		{"ErrNameEmpty", func(in *auth.RegisterInput) { in.Name = "   " }, "name"},
		{"ErrNameTooLong", func(in *auth.RegisterInput) { in.Name = strings.Repeat("é", 101) }, "name"},
		{"ErrNameControl", func(in *auth.RegisterInput) { in.Name = "Ann\x07" }, "name"},
		{"ErrEmail", func(in *auth.RegisterInput) { in.Email = "not-an-email" }, "email"},
		{"ErrPasswordShort", func(in *auth.RegisterInput) { in.Password, in.PasswordConfirm = "1234567", "1234567" }, "password"},
		{"ErrPasswordLongBytes", func(in *auth.RegisterInput) {
			// 25 three-byte characters: 25 characters, 75 bytes.
			p := strings.Repeat("€", 25)
			in.Password, in.PasswordConfirm = p, p
		}, "password"},
		{"ErrPasswordsDiffer", func(in *auth.RegisterInput) { in.PasswordConfirm = "password2" }, "passwordConfirm"},
		{"ErrPhotoScheme", func(in *auth.RegisterInput) { in.Photo = "javascript:alert(1)" }, "photo"},
		{"ErrPhotoRelative", func(in *auth.RegisterInput) { in.Photo = "/me.png" }, "photo"},
		{"ErrPhotoTooLong", func(in *auth.RegisterInput) { in.Photo = "https://example.com/" + strings.Repeat("a", 2048) }, "photo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := ok()
			c.edit(&in)
			assertInputError(t, in.Validate(), c.field)
		})
	}
	t.Run("OKPasswordMultibyteWithinLimit", func(t *testing.T) {
		in := ok()
		p := strings.Repeat("€", 24) // 72 bytes
		in.Password, in.PasswordConfirm = p, p
		if err := in.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OKPhoto", func(t *testing.T) {
		in := ok()
		in.Photo = "https://example.com/a.png"
		if err := in.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func assertInputError(t *testing.T, err error, field string) {
	t.Helper()
	e, ok := err.(*auth.Error)
	if !ok {
		t.Fatalf("error = %v (%T), want *auth.Error", err, err)
	}
	if e.Code != auth.CodeBadUserInput || e.Field != field || e.Message == "" {
		t.Fatalf("error = %+v, want BAD_USER_INPUT on %q with a message", e, field)
	}
}
