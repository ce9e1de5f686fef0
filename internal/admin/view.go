package admin

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cometbot/cometbot/storage"
)

// Chart geometry (SVG user units).
const (
	chartDays   = 30
	chartLeft   = 64 // room for the y-axis labels
	chartTop    = 12
	chartHeight = 160
	barWidth    = 18
	barGap      = 6
	maxModels   = 8 // models drawn in their own colour; the rest are "other"
	topN        = 10
)

// palette colours the models of the charts (colour-blind friendly).
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"}

// view is what the page template renders.
type view struct {
	Now        string
	Workspace  string   // the filter ("" = all)
	Workspaces []string // known workspaces, for the filter
	Month      string
	Spend      chart
	Tokens     chart
	Legend     []legendItem
	Users      []row
	Channels   []row
	Models     []row
	MonthTotal row
	Budgets    []budgetScope
	Errors     []ErrorCount
	Health     healthView
	HasHealth  bool
}

type legendItem struct{ Name, Color string }

type chart struct {
	ID            string
	Width, Height int
	Max           string // the top label
	Bars          []bar
	Labels        []axisLabel
	BaseY         int
}

type bar struct {
	Day   string
	Total float64
	Title string
	Segs  []seg
}

type seg struct {
	X, Y, W, H float64
	Color      string
	Title      string
}

type axisLabel struct {
	X    float64
	Text string
}

type row struct {
	Name    string
	Replies int
	Tokens  string
	Cost    string
}

type budgetScope struct {
	Scope   string // "user", "channel", "workspace"
	Daily   string
	Monthly string
	Rows    []budgetRow
}

type budgetRow struct {
	Name               string
	Day, Month         string
	DayPct, MonthPct   int
	DayBar, MonthBar   float64 // bar widths out of 100
	DayWarn, MonthWarn bool
	NoDay, NoMonth     bool // no daily / monthly limit
}

type healthView struct {
	Platforms    []Platform
	GatewayOK    bool
	GatewayError string
	Models       int
	CatalogAge   string
	StoreError   string
}

// build reads the store once per period set and assembles the page.
func (h *Handler) build(ctx context.Context, ws string) (*view, error) {
	now := h.o.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	days := make([]string, chartDays)
	for i := range days {
		days[i] = storage.Day(today.AddDate(0, 0, i-chartDays+1))
	}
	v := &view{Now: now.Format("2006-01-02 15:04 UTC"), Workspace: ws, Month: now.Format("January 2006")}

	known, err := h.o.Usage.UsageRows(ctx, []string{storage.Month(now), storage.Month(today.AddDate(0, 0, -chartDays))}, "", storage.KindAll)
	if err != nil {
		return nil, err
	}
	for _, r := range known {
		if !slices.Contains(v.Workspaces, r.Workspace) {
			v.Workspaces = append(v.Workspaces, r.Workspace)
		}
	}
	sort.Strings(v.Workspaces)

	dayModels, err := h.o.Usage.UsageRows(ctx, days, ws, storage.KindModel)
	if err != nil {
		return nil, err
	}
	month, err := h.o.Usage.UsageRows(ctx, []string{storage.Month(now)}, ws, "")
	if err != nil {
		return nil, err
	}
	todayRows, err := h.o.Usage.UsageRows(ctx, []string{storage.Day(now)}, ws, "")
	if err != nil {
		return nil, err
	}

	v.Spend, v.Tokens, v.Legend = charts(days, dayModels)
	byKind := func(rows []storage.UsageRow, kind string) map[string]storage.Counter {
		out := map[string]storage.Counter{}
		for _, r := range rows {
			if r.Kind != kind {
				continue
			}
			name := r.ID
			if kind == storage.KindAll {
				name = r.Workspace
			} else if ws == "" && kind != storage.KindModel {
				name = r.Workspace + " · " + r.ID
			}
			out[name] = out[name].Add(r.Counter)
		}
		return out
	}
	v.Users = top(byKind(month, storage.KindUser))
	v.Channels = top(byKind(month, storage.KindChannel))
	v.Models = top(byKind(month, storage.KindModel))
	var total storage.Counter
	for _, c := range byKind(month, storage.KindAll) {
		total = total.Add(c)
	}
	v.MonthTotal = toRow("Total", total)

	if h.o.Budgets != nil {
		b := h.o.Budgets()
		for _, s := range []struct {
			name, kind string
			lim        Limit
		}{{"user", storage.KindUser, b.User}, {"channel", storage.KindChannel, b.Channel}, {"workspace", storage.KindAll, b.Workspace}} {
			if s.lim == (Limit{}) {
				continue
			}
			v.Budgets = append(v.Budgets, budgetRows(s.name, s.lim, byKind(todayRows, s.kind), byKind(month, s.kind)))
		}
	}
	if h.o.Errors != nil {
		v.Errors = h.o.Errors()
	}
	if h.o.Health != nil {
		hv := h.o.Health(ctx)
		v.HasHealth = true
		v.Health = healthView{Platforms: hv.Platforms, GatewayOK: hv.GatewayOK, GatewayError: hv.GatewayError, Models: hv.CatalogModels, StoreError: hv.StoreError, CatalogAge: "never loaded"}
		if !hv.CatalogFetched.IsZero() {
			v.Health.CatalogAge = age(now.Sub(hv.CatalogFetched)) + " old"
		}
	}
	return v, nil
}

// charts draws the spend and token charts: one bar per day, stacked by model.
func charts(days []string, rows []storage.UsageRow) (spend, tokens chart, legend []legendItem) {
	idx := make(map[string]int, len(days))
	for i, d := range days {
		idx[d] = i
	}
	modelCost := map[string]float64{}
	for _, r := range rows {
		modelCost[r.ID] += r.Cost + float64(r.InputTokens+r.OutputTokens)*1e-12 // tokens break ties
	}
	models := make([]string, 0, len(modelCost))
	for m := range modelCost {
		models = append(models, m)
	}
	sort.Slice(models, func(i, j int) bool {
		if modelCost[models[i]] != modelCost[models[j]] {
			return modelCost[models[i]] > modelCost[models[j]]
		}
		return models[i] < models[j]
	})
	slot := map[string]int{}
	for i, m := range models {
		slot[m] = min(i, maxModels)
	}
	nslots := min(len(models), maxModels+1)
	for i := range nslots {
		name := "other"
		if i < maxModels {
			name = models[i]
		}
		legend = append(legend, legendItem{name, palette[i]})
	}
	cost := make([][]float64, len(days))
	toks := make([][]float64, len(days))
	for i := range days {
		cost[i], toks[i] = make([]float64, nslots), make([]float64, nslots)
	}
	for _, r := range rows {
		d, ok := idx[r.Period]
		if !ok {
			continue
		}
		cost[d][slot[r.ID]] += r.Cost
		toks[d][slot[r.ID]] += float64(r.InputTokens + r.OutputTokens)
	}
	spend = draw("spend", days, cost, legend, money)
	tokens = draw("tokens", days, toks, legend, func(f float64) string { return compact(int64(f)) })
	return spend, tokens, legend
}

func draw(id string, days []string, vals [][]float64, legend []legendItem, format func(float64) string) chart {
	c := chart{ID: id, Width: chartLeft + len(days)*(barWidth+barGap), Height: chartTop + chartHeight + 22, BaseY: chartTop + chartHeight}
	top := 0.0
	for _, v := range vals {
		sum := 0.0
		for _, x := range v {
			sum += x
		}
		top = max(top, sum)
	}
	c.Max = format(top)
	for i, d := range days {
		x := float64(chartLeft + i*(barWidth+barGap))
		b := bar{Day: strings.TrimPrefix(d, "d:")}
		y := float64(chartTop + chartHeight)
		for s, v := range vals[i] {
			b.Total += v
			if v <= 0 || top <= 0 {
				continue
			}
			h := round2(v / top * chartHeight)
			y -= h
			b.Segs = append(b.Segs, seg{X: x, Y: round2(y), W: barWidth, H: h, Color: legend[s].Color, Title: legend[s].Name + ": " + format(v)})
		}
		b.Title = b.Day + ": " + format(b.Total)
		c.Bars = append(c.Bars, b)
		if i%5 == 0 || i == len(days)-1 {
			c.Labels = append(c.Labels, axisLabel{X: x + barWidth/2, Text: b.Day[5:]})
		}
	}
	return c
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func top(m map[string]storage.Counter) []row {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := m[names[i]], m[names[j]]
		if a.Cost != b.Cost {
			return a.Cost > b.Cost
		}
		if at, bt := a.InputTokens+a.OutputTokens, b.InputTokens+b.OutputTokens; at != bt {
			return at > bt
		}
		return names[i] < names[j]
	})
	out := make([]row, 0, min(topN, len(names)))
	for _, n := range names[:min(topN, len(names))] {
		out = append(out, toRow(n, m[n]))
	}
	return out
}

func toRow(name string, c storage.Counter) row {
	return row{Name: name, Replies: c.Replies, Tokens: compact(c.InputTokens + c.OutputTokens), Cost: money(c.Cost)}
}

// budgetRows lists the scopes closest to their limits (today or this month).
func budgetRows(scope string, lim Limit, day, month map[string]storage.Counter) budgetScope {
	bs := budgetScope{Scope: scope, Daily: "none", Monthly: "none"}
	if lim.Daily > 0 {
		bs.Daily = money(lim.Daily)
	}
	if lim.Monthly > 0 {
		bs.Monthly = money(lim.Monthly)
	}
	frac := func(used, cap float64) float64 {
		if cap <= 0 {
			return 0
		}
		return used / cap
	}
	type cand struct {
		name string
		f    float64
	}
	var cs []cand
	for n, c := range month {
		cs = append(cs, cand{n, max(frac(day[n].Cost, lim.Daily), frac(c.Cost, lim.Monthly))})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].f != cs[j].f {
			return cs[i].f > cs[j].f
		}
		return cs[i].name < cs[j].name
	})
	for _, c := range cs[:min(5, len(cs))] {
		d, m := frac(day[c.name].Cost, lim.Daily), frac(month[c.name].Cost, lim.Monthly)
		bs.Rows = append(bs.Rows, budgetRow{
			Name: c.name, Day: money(day[c.name].Cost), Month: money(month[c.name].Cost),
			DayPct: int(math.Round(d * 100)), MonthPct: int(math.Round(m * 100)),
			DayBar: round2(min(d, 1) * 100), MonthBar: round2(min(m, 1) * 100),
			DayWarn: d >= 0.8, MonthWarn: m >= 0.8, NoDay: lim.Daily <= 0, NoMonth: lim.Monthly <= 0,
		})
	}
	return bs
}

func money(f float64) string {
	switch {
	case f == 0:
		return "$0"
	case f < 0.01:
		return fmt.Sprintf("$%.4f", f)
	default:
		return fmt.Sprintf("$%.2f", f)
	}
}

func compact(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	default:
		return fmt.Sprint(n)
	}
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
