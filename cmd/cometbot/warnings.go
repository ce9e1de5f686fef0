package main

import (
	"fmt"
	"log/slog"

	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/llm"
)

// openDefaults lists, one sentence each, what the configuration leaves open
// to everyone: with no admins anyone may change server-wide settings, and
// with no budgets spending is unlimited.
func openDefaults(cfg *config.Config) []string {
	f := cfg.File
	var out []string
	if len(f.Access.Admins) == 0 && len(f.Access.AdminRoles) == 0 {
		out = append(out, "no admins are configured (access.admins, access.admin_roles): everyone may change server-wide models and system prompts")
	}
	if !budgetsConfigured(cfg) {
		out = append(out, "no budgets are configured (budgets.user, budgets.channel, budgets.workspace): spending is not limited")
	}
	return out
}

func budgetsConfigured(cfg *config.Config) bool {
	b := cfg.File.Budgets
	return b.User != (config.Limit{}) || b.Channel != (config.Limit{}) || b.Workspace != (config.Limit{})
}

// priceSource is what pricingProblem needs of the catalog (*llm.Catalog).
type priceSource interface {
	Loaded() bool
	Price(id string) (llm.Pricing, bool)
}

// pricingProblem says why configured budgets cannot be applied to the
// default model — no catalog, or no known price for it — or returns "".
// Budgeted turns with a model that can't be priced are refused.
func pricingProblem(cfg *config.Config, cat priceSource) string {
	if !budgetsConfigured(cfg) {
		return ""
	}
	if cat == nil || !cat.Loaded() {
		return "budgets are configured but no model catalog is loaded, so no reply can be priced: budgeted turns are refused until the catalog (COMETAPI_CATALOG_URL) is fetched"
	}
	if _, ok := cat.Price(cfg.Model()); !ok {
		return fmt.Sprintf("budgets are configured but the default model %q has no known price, so budgeted turns with it are refused: pick a priced default_model (see \"cometbot models\")", cfg.Model())
	}
	return ""
}

// warnOpenDefaults logs, at start, the open defaults and any pricing problem.
func warnOpenDefaults(cfg *config.Config, cat priceSource, log *slog.Logger) {
	for _, w := range openDefaults(cfg) {
		log.Warn(w)
	}
	if p := pricingProblem(cfg, cat); p != "" {
		log.Warn(p)
	}
}
