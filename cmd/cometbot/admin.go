package main

import (
	"context"
	"log/slog"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/admin"
)

// adminHandler builds the /admin dashboard (COMETBOT_ADMIN_TOKEN): usage
// from the store, budgets from the configuration in force (they follow a
// reload), the engine's recent errors and the live state of the platforms,
// gateway, catalog and store.
func adminHandler(c *core, rl *reloader, platforms []namedPlatform, log *slog.Logger) (*admin.Handler, error) {
	return admin.New(admin.Options{
		Token:  c.cfg.AdminToken.Value(),
		Usage:  c.store,
		Logger: log.With("component", "admin"),
		Budgets: func() admin.Budgets {
			b := rl.config().File.Budgets
			return admin.Budgets{User: admin.Limit(b.User), Channel: admin.Limit(b.Channel), Workspace: admin.Limit(b.Workspace)}
		},
		Errors: func() []admin.ErrorCount { return errorCounts(c.engine.RecentErrors()) },
		Health: func(ctx context.Context) admin.Health {
			h := admin.Health{CatalogModels: c.catalog.Len()}
			for _, p := range platforms {
				h.Platforms = append(h.Platforms, admin.Platform{Name: p.name, Connected: p.Ready()})
			}
			var err error
			h.CatalogFetched, err = c.catalog.FetchedAt()
			h.GatewayOK = err == nil && !h.CatalogFetched.IsZero()
			if err != nil {
				h.GatewayError = err.Error()
			}
			if err := c.engine.StoreError(ctx); err != nil {
				h.StoreError = err.Error()
			}
			return h
		},
	})
}

func errorCounts(in []bot.ErrorCount) []admin.ErrorCount {
	out := make([]admin.ErrorCount, len(in))
	for i, e := range in {
		out[i] = admin.ErrorCount(e)
	}
	return out
}
