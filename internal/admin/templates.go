package admin

import "html/template"

const style = `<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0;flex:1}
header form{margin:0}
main{padding:16px 20px;display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px 16px}
section.wide{grid-column:1/-1}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
td,th{padding:3px 6px;text-align:left;border-bottom:1px solid #eef0f3}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d32}.bad{color:#c62828}.warn{color:#b26a00}
.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
svg text{font-size:10px;fill:#555}
.login{max-width:340px;margin:80px auto}
input,select,button{font:inherit;padding:4px 8px}
</style>`

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cometbot admin — sign in</title>` + style + `</head>
<body><section class="login"><h2>cometbot admin</h2>
{{if .}}<p class="bad" id="login-error">{{.}}</p>{{end}}
<form method="post" action="/admin/login">
<p><label>Admin token<br><input type="password" name="token" id="token" autocomplete="current-password" required autofocus></label></p>
<p><button type="submit" id="signin">Sign in</button></p>
</form></section></body></html>`))

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cometbot admin</title>` + style + `</head>
<body>
<header><h1>cometbot</h1>
<form method="get" action="/admin"><label>Workspace
<select name="ws"><option value="">all workspaces</option>{{range .Workspaces}}<option value="{{.}}"{{if eq . $.Workspace}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<button type="submit">Show</button></form>
<span>{{.Now}}</span>
<form method="post" action="/admin/logout"><button type="submit">Sign out</button></form>
</header>
<main>
<section class="wide"><h2>Spend per day, last 30 days{{if .Workspace}} — {{.Workspace}}{{end}}</h2>
{{template "chart" .Spend}}
<h2>Tokens per day</h2>
{{template "chart" .Tokens}}
<p class="legend">{{range .Legend}}<span><i style="background:{{.Color}}"></i>{{.Name}}</span>{{end}}</p>
</section>
<section><h2>Top users — {{.Month}}</h2>{{template "table" .Users}}</section>
<section><h2>Top channels — {{.Month}}</h2>{{template "table" .Channels}}</section>
<section><h2>Models — {{.Month}}</h2>{{template "table" .Models}}
<p>Month total: {{.MonthTotal.Replies}} replies, {{.MonthTotal.Tokens}} tokens, <b id="month-total">{{.MonthTotal.Cost}}</b></p></section>
<section><h2>Budgets</h2>
{{range .Budgets}}<h3>Per {{.Scope}}: daily {{.Daily}}, monthly {{.Monthly}}</h3>
<table><tr><th>{{.Scope}}</th><th class="n">today</th><th></th><th class="n">month</th><th></th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td>
<td class="n{{if .DayWarn}} warn{{end}}">{{.Day}}{{if not .NoDay}} ({{.DayPct}}%){{end}}</td><td>{{if not .NoDay}}<svg width="80" height="8"><rect width="80" height="8" fill="#eef0f3"/><rect width="{{.DayBar}}%" height="8" fill="{{if .DayWarn}}#e15759{{else}}#59a14f{{end}}"/></svg>{{end}}</td>
<td class="n{{if .MonthWarn}} warn{{end}}">{{.Month}}{{if not .NoMonth}} ({{.MonthPct}}%){{end}}</td><td>{{if not .NoMonth}}<svg width="80" height="8"><rect width="80" height="8" fill="#eef0f3"/><rect width="{{.MonthBar}}%" height="8" fill="{{if .MonthWarn}}#e15759{{else}}#59a14f{{end}}"/></svg>{{end}}</td></tr>
{{else}}<tr><td colspan="5">no spending yet</td></tr>{{end}}</table>
{{else}}<p>No budgets are configured (budgets in the YAML file).</p>{{end}}
</section>
<section><h2>Errors, last 24 hours</h2>
{{if .Errors}}<table id="errors"><tr><th>kind</th><th class="n">count</th></tr>{{range .Errors}}<tr><td>{{.Kind}}</td><td class="n">{{.Count}}</td></tr>{{end}}</table>
{{else}}<p class="ok">None.</p>{{end}}</section>
{{if .HasHealth}}<section><h2>Health</h2><table id="health">
{{range .Health.Platforms}}<tr><td>{{.Name}}</td><td>{{if .Connected}}<span class="ok">connected</span>{{else}}<span class="bad">not connected</span>{{end}}</td></tr>{{end}}
<tr><td>gateway</td><td>{{if .Health.GatewayOK}}<span class="ok">reachable</span>{{else}}<span class="bad">{{or .Health.GatewayError "not reached yet"}}</span>{{end}}</td></tr>
<tr><td>model catalog</td><td>{{.Health.Models}} models, {{.Health.CatalogAge}}</td></tr>
<tr><td>store</td><td>{{if .Health.StoreError}}<span class="bad">{{.Health.StoreError}}</span>{{else}}<span class="ok">saving turns</span>{{end}}</td></tr>
</table></section>{{end}}
</main></body></html>

{{define "table"}}<table><tr><th>name</th><th class="n">replies</th><th class="n">tokens</th><th class="n">cost</th></tr>
{{range .}}<tr><td>{{.Name}}</td><td class="n">{{.Replies}}</td><td class="n">{{.Tokens}}</td><td class="n">{{.Cost}}</td></tr>{{else}}<tr><td colspan="4">no usage yet</td></tr>{{end}}</table>{{end}}

{{define "chart"}}<svg id="{{.ID}}" role="img" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" xmlns="http://www.w3.org/2000/svg">
<line x1="60" y1="{{.BaseY}}" x2="{{.Width}}" y2="{{.BaseY}}" stroke="#999"/>
<text x="56" y="18" text-anchor="end">{{.Max}}</text><text x="56" y="{{.BaseY}}" text-anchor="end">0</text>
{{range .Bars}}<g class="day" data-day="{{.Day}}" data-total="{{.Total}}"><title>{{.Title}}</title>{{range .Segs}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Color}}"><title>{{.Title}}</title></rect>{{end}}</g>
{{end}}{{range .Labels}}<text x="{{.X}}" y="{{$.Height}}" text-anchor="middle">{{.Text}}</text>{{end}}
</svg>{{end}}
`))
