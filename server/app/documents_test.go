package app_test

import (
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
)

// Saved searches and dashboards through the Go SDK: create, get, update,
// list (with the name filter and paging), delete; a dashboard's charts
// one by one; the errors a user meets (unknown logstore, duplicates,
// missing ones). Fields the server does not interpret survive.
func TestSavedSearchesAndDashboards(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "docs", "access"
	setupProject(t, c, project, logstore)

	ss := &sls.SavedSearch{SavedSearchName: "errors", SearchQuery: "status >= 500", Logstore: logstore, Topic: "web", DisplayName: "Server errors"}
	require.NoError(t, c.CreateSavedSearch(project, ss))
	requireSLSError(t, c.CreateSavedSearch(project, ss), 400, "SavedSearchAlreadyExist")
	requireSLSError(t, c.CreateSavedSearch(project, &sls.SavedSearch{SavedSearchName: "x", SearchQuery: "*", Logstore: "nope"}), 404, "LogStoreNotExist")
	requireSLSError(t, c.CreateSavedSearch(project, &sls.SavedSearch{SavedSearchName: "x", Logstore: logstore}), 400, "ParameterInvalid")
	require.NoError(t, c.CreateSavedSearch(project, &sls.SavedSearch{SavedSearchName: "slow", SearchQuery: "latency > 1000", Logstore: logstore}))
	got, err := c.GetSavedSearch(project, "errors")
	require.NoError(t, err)
	require.Equal(t, ss, got)
	ss.SearchQuery = "status >= 500 and not status:503"
	require.NoError(t, c.UpdateSavedSearch(project, ss))
	got, err = c.GetSavedSearch(project, "errors")
	require.NoError(t, err)
	require.Equal(t, ss.SearchQuery, got.SearchQuery)
	requireSLSError(t, c.UpdateSavedSearch(project, &sls.SavedSearch{SavedSearchName: "none", SearchQuery: "*", Logstore: logstore}), 404, "SavedSearchNotExist")
	names, items, total, count, err := c.ListSavedSearchV2(project, "", 0, 100)
	require.NoError(t, err)
	require.Equal(t, []string{"errors", "slow"}, names)
	require.Equal(t, "Server errors", items[0].DisplayName)
	require.Equal(t, 2, total)
	require.Equal(t, 2, count)
	names, _, total, _, err = c.ListSavedSearchV2(project, "slo", 0, 100)
	require.NoError(t, err)
	require.Equal(t, []string{"slow"}, names)
	require.Equal(t, 1, total)
	names, _, total, _, err = c.ListSavedSearchV2(project, "", 1, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"slow"}, names)
	require.Equal(t, 2, total)
	require.NoError(t, c.DeleteSavedSearch(project, "slow"))
	_, err = c.GetSavedSearch(project, "slow")
	requireSLSError(t, err, 404, "SavedSearchNotExist")

	chart := func(title, query string) sls.Chart {
		return sls.Chart{Title: title, Type: "linepro", Search: sls.ChartSearch{Logstore: logstore, Query: query, Start: "-3600s", End: "now"},
			Display: sls.ChartDisplay{XAxisKeys: []string{"t"}, YAxisKeys: []string{"pv"}, Width: 5, Height: 5, DisplayName: title}}
	}
	d := sls.Dashboard{DashboardName: "overview", Description: "traffic", DisplayName: "Overview",
		ChartList: []sls.Chart{chart("pv", "* | select __time__ - __time__ % 60 as t, count(*) as pv group by t")}}
	require.NoError(t, c.CreateDashboard(project, d))
	requireSLSError(t, c.CreateDashboard(project, d), 400, "DashboardAlreadyExist")
	requireSLSError(t, c.CreateDashboardString(project, `{"dashboardName":"bad","charts":[{"type":"x"}]}`), 400, "ParameterInvalid")
	require.NoError(t, c.CreateDashboardString(project, `{"dashboardName":"raw","charts":[],"attribute":{"type":"grid"}}`))
	s, err := c.GetDashboardString(project, "raw")
	require.NoError(t, err)
	require.JSONEq(t, `{"dashboardName":"raw","charts":[],"attribute":{"type":"grid"}}`, s)

	require.NoError(t, c.CreateChart(project, "overview", chart("errors", "status >= 500 | select count(*) as pv")))
	requireSLSError(t, c.CreateChart(project, "overview", chart("errors", "*")), 400, "ParameterInvalid")
	upd := chart("errors", "status >= 500 | select count(*) as errors")
	require.NoError(t, c.UpdateChart(project, "overview", upd))
	gc, err := c.GetChart(project, "overview", "errors")
	require.NoError(t, err)
	require.Equal(t, upd, *gc)
	requireSLSError(t, c.DeleteChart(project, "overview", "nope"), 404, "ChartNotExist")
	require.NoError(t, c.DeleteChart(project, "overview", "pv"))
	gd, err := c.GetDashboard(project, "overview")
	require.NoError(t, err)
	require.Equal(t, "traffic", gd.Description)
	require.Equal(t, []sls.Chart{upd}, gd.ChartList)

	dnames, ditems, count, total, err := c.ListDashboardV2(project, "", 0, 100)
	require.NoError(t, err)
	require.Equal(t, []string{"overview", "raw"}, dnames)
	require.Equal(t, "Overview", ditems[0].DisplayName)
	require.Equal(t, 2, count)
	require.Equal(t, 2, total)
	require.NoError(t, c.DeleteDashboard(project, "overview"))
	_, err = c.GetDashboard(project, "overview")
	requireSLSError(t, err, 404, "DashboardNotExist")
}
