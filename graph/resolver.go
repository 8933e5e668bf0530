// Package graph is the GraphQL layer: gqlgen's generated executor, the
// resolvers (a few lines each: call the service, move cookies), and the
// HTTP handler with its transports, limits and error presenter.
package graph

import (
	"context"

	"github.com/gqlauth/gqlauth/graph/model"
	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/web"
)

//go:generate go tool gqlgen generate

// Resolver holds the resolvers' dependencies; server.go builds it once.
type Resolver struct {
	Auth *auth.Service
}

// signedIn sets the session cookies and returns the payload of login and
// refresh. Should the answer not reach the client, the tokens are undone
// (see auth.Tokens.Undo).
func signedIn(req *web.Request, u *auth.User, t *auth.Tokens) *model.AuthPayload {
	req.SetSessionCookies(web.Session{IssuedAt: t.IssuedAt, Access: t.Access, AccessExpiresAt: t.AccessExpiresAt, Refresh: t.Refresh, RefreshExpiresAt: t.RefreshExpiresAt})
	req.OnUndelivered(t.Undo)
	return &model.AuthPayload{AccessToken: t.Access, AccessTokenExpiresAt: t.AccessExpiresAt, User: u}
}

// identity authenticates the request's access token, once per request
// whatever the number of fields that need it.
func (r *Resolver) identity(ctx context.Context) (*auth.Identity, error) {
	req := web.FromContext(ctx)
	return req.Identity(func() (*auth.Identity, error) {
		accessToken, err := req.AccessToken()
		if err != nil {
			return nil, err
		}
		return r.Auth.Authenticate(ctx, accessToken)
	})
}
