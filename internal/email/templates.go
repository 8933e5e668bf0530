package email

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
)

//go:embed templates/*
var builtin embed.FS

// Templates renders each kind's subject, plain-text body and HTML body. The
// HTML body goes through html/template, which escapes every value for where
// it appears (a name with markup stays text, a link stays an http(s) URL).
type Templates struct {
	subject map[Kind]*texttemplate.Template
	text    map[Kind]*texttemplate.Template
	html    map[Kind]*htmltemplate.Template
	// Overridden lists the files taken from the directory.
	Overridden []string
}

// TemplateNames lists the file names of every template, as
// EMAIL_TEMPLATES_DIR may replace them.
func TemplateNames() []string {
	var out []string
	for _, k := range Kinds {
		out = append(out, string(k)+".subject.txt", string(k)+".txt", string(k)+".html")
	}
	return out
}

// LoadTemplates parses the built-in templates, each replaced by the file of
// the same name in dir when dir is set and has it. Every template is tried
// on sample values, so that a broken replacement stops start-up rather than
// the first e-mail.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{
		subject: map[Kind]*texttemplate.Template{},
		text:    map[Kind]*texttemplate.Template{},
		html:    map[Kind]*htmltemplate.Template{},
	}
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				t.Overridden = append(t.Overridden, name)
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
		b, err := builtin.ReadFile("templates/" + name)
		return string(b), err
	}
	for _, k := range Kinds {
		for _, part := range []string{".subject.txt", ".txt", ".html"} {
			name := string(k) + part
			src, err := read(name)
			if err != nil {
				return nil, fmt.Errorf("e-mail template %s: %w", name, err)
			}
			switch part {
			case ".html":
				tpl, err := htmltemplate.New(name).Option("missingkey=error").Parse(src)
				if err != nil {
					return nil, fmt.Errorf("e-mail template %s: %w", name, err)
				}
				t.html[k] = tpl
			default:
				tpl, err := texttemplate.New(name).Option("missingkey=error").Parse(src)
				if err != nil {
					return nil, fmt.Errorf("e-mail template %s: %w", name, err)
				}
				if part == ".txt" {
					t.text[k] = tpl
				} else {
					t.subject[k] = tpl
				}
			}
		}
		sample := Message{Kind: k, To: "ada@example.com", Name: "Ada <b>&amp;", Email: "ada@example.com",
			NewEmail: "ada@new.example", Link: Link("https://app.example", k, "sample"), ExpiresIn: time.Hour}
		if _, err := t.Render(sample); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Rendered is an e-mail's subject and bodies.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// templateData is what every template sees.
type templateData struct {
	Name      string
	Email     string
	NewEmail  string
	Link      string
	ExpiresIn string
}

// Render fills m's templates. The subject is one line: any line break or
// control character a template produced becomes a space, so nothing can
// reach another header.
func (t *Templates) Render(m Message) (Rendered, error) {
	subj, text, html := t.subject[m.Kind], t.text[m.Kind], t.html[m.Kind]
	if subj == nil || text == nil || html == nil {
		return Rendered{}, fmt.Errorf("e-mail: no templates for kind %q", m.Kind)
	}
	// Names are checked for control characters at registration, but users
	// adopted from the tutorial's database were not.
	d := templateData{Name: oneLine(m.Name), Email: m.Email, NewEmail: m.NewEmail, Link: m.Link, ExpiresIn: humanDuration(m.ExpiresIn)}
	var out Rendered
	var b bytes.Buffer
	if err := subj.Execute(&b, d); err != nil {
		return out, fmt.Errorf("e-mail template %s: %w", subj.Name(), err)
	}
	out.Subject = oneLine(b.String())
	b.Reset()
	if err := text.Execute(&b, d); err != nil {
		return out, fmt.Errorf("e-mail template %s: %w", text.Name(), err)
	}
	out.Text = b.String()
	b.Reset()
	if err := html.Execute(&b, d); err != nil {
		return out, fmt.Errorf("e-mail template %s: %w", html.Name(), err)
	}
	out.HTML = b.String()
	return out, nil
}

// oneLine turns every run of spaces, line breaks and control characters
// into one space, and trims the ends.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}
