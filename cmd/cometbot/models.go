package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/llm"
)

func cmdModels(ctx context.Context, getenv func(string) string, args []string, stdout io.Writer) (err error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	defer func() { err = scrubbed(cfg, err) }()
	cat := llm.NewCatalog(llm.CatalogConfig{URL: cfg.CatalogURL})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cat.Refresh(ctx); err != nil {
		return fmt.Errorf("fetch the model catalog from %s: %s (check COMETAPI_CATALOG_URL / COMETAPI_BASE_URL; run \"cometbot doctor\")", cfg.CatalogURL, llm.UserMessage(err))
	}
	filter := strings.Join(args, " ")
	models := cat.Search(filter, 0)
	if len(models) == 0 {
		return fmt.Errorf("no text model matches %q", filter)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tPROVIDER\tINPUT $/M\tOUTPUT $/M")
	for _, m := range models {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, dash(m.Provider), num(m.Pricing.Input), num(m.Pricing.Output))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d text models (prices in USD per million tokens).\n", len(models))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
