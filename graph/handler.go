package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/web"
)

// Options configures NewHandler.
type Options struct {
	Resolver        *Resolver
	Logger          *slog.Logger
	Cookies         web.CookieConfig
	TrustedProxies  []netip.Prefix
	MaxBodyBytes    int64
	ComplexityLimit int
	DepthLimit      int
	Introspection   bool
	// RateLimiter limits login, register and refresh per client IP; nil
	// disables it.
	RateLimiter *web.RateLimiter
	// Observe, when set, is told of every operation (for metrics).
	Observe OperationObserver
}

// NewHandler returns the /graphql handler: JSON POST, and GET for queries
// only; the body limit; the complexity limit; introspection when enabled;
// one error presenter and one recover function. It reads the tokens from
// each request and lets resolvers set cookies (web.Auth).
func NewHandler(o Options) http.Handler {
	return web.Auth(o.Cookies, o.TrustedProxies)(newServer(o))
}

// newServer returns the gqlgen server inside the handler.
func newServer(o Options) *handler.Server {
	srv := handler.New(NewExecutableSchema(Config{Resolvers: o.Resolver}))
	srv.AddTransport(postTransport{maxBody: o.MaxBodyBytes})
	srv.AddTransport(newGetTransport(o.Observe))
	srv.Use(observer{observe: o.Observe})
	cache := newQueryCache(QueryCacheBytes, MaxCachedQueryBytes)
	srv.SetQueryCache(cache)
	srv.Use(newSelectionLimit(o.ComplexityLimit, cache))
	srv.SetParserTokenLimit(ParserTokenLimit)
	srv.SetDisableSuggestion(true)
	srv.SetValidationRulesFn(validationRules(o.DepthLimit, o.Introspection))
	srv.Use(extension.FixedComplexityLimit(o.ComplexityLimit))
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	if o.RateLimiter != nil {
		srv.AroundRootFields(rateLimitSignIns(o.RateLimiter))
	}
	srv.SetErrorPresenter(errorPresenter(o.Logger))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		o.Logger.ErrorContext(ctx, "panic in resolver", "panic", p, "stack", string(debug.Stack()))
		return errors.New("panic in resolver")
	})
	return srv
}

// errInternalMessage is what clients see for anything unexpected.
const errInternalMessage = "Internal server error"

// errorPresenter maps domain errors to their codes and masks everything
// else as INTERNAL_SERVER_ERROR, logging it with the request id. gqlgen's own
// request errors (parse, validation, complexity) keep their codes.
func errorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var path ast.Path
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) {
			path = gqlErr.Path
		}
		if path == nil {
			path = graphql.GetPath(ctx)
		}

		var authErr *auth.Error
		if errors.As(err, &authErr) {
			ext := map[string]any{"code": authErr.Code}
			if authErr.Field != "" {
				ext["field"] = authErr.Field
			}
			if authErr.Code == auth.CodeRateLimited {
				ext["retryAfter"] = authErr.RetryAfter
				if r := web.FromContext(ctx); r != nil {
					r.SetRetryAfter(authErr.RetryAfter)
				}
			}
			if authErr.Code == auth.CodeInternal {
				log.ErrorContext(ctx, "request failed", "err", err.Error())
			}
			return &gqlerror.Error{Message: authErr.Message, Path: path, Extensions: ext}
		}

		// gqlgen's own errors (parse, validation, complexity, variables)
		// carry no wrapped error and keep their codes.
		if gqlErr != nil && gqlErr.Err == nil {
			gqlErr.Message = withoutSuggestions(gqlErr.Message)
			return gqlErr
		}

		log.ErrorContext(ctx, "internal error", "err", err.Error())
		return &gqlerror.Error{
			Message:    errInternalMessage,
			Path:       path,
			Extensions: map[string]any{"code": auth.CodeInternal},
		}
	}
}
