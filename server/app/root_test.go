package app_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/app/apptest"
)

// A browser opening the server's address lands on the console; an
// unsigned API call there still gets the API's answer.
func TestRootSendsBrowsersToTheConsole(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{})
	h := srv.App.Handler()

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusFound, w.Code)
	require.Equal(t, "/console/", w.Header().Get("Location"))

	r = httptest.NewRequest(http.MethodGet, "/", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusUnauthorized, w.Code, w.Body.String())
}
