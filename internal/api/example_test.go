package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/firebreak/firebreak/internal/api"
	"github.com/firebreak/firebreak/internal/api/view/viewtest"
	"github.com/firebreak/firebreak/internal/auth"
)

// A node serves the API over its state; here the state is the in-memory
// fixture (a node uses api.NewEtcd, or api.Component).
func ExampleNew() {
	state := viewtest.New(viewtest.SampleTopology(), "fb-pangyo")
	authn := &auth.Authenticator{Tokens: auth.NewTokens(auth.Token{Secret: "operator-token-0123456789", Role: auth.Operator, Name: "alice"})}
	srv, err := api.New(api.Config{Node: "fb-pangyo", Auth: authn}, state, state, nil)
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	req, _ := http.NewRequest("POST", ts.URL+"/api/v1/sites/ansan/drain", strings.NewReader(`{"reason":"power work","ttl":"2h"}`))
	req.Header.Set("Authorization", "Bearer operator-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get(api.ServedByHeader))
	fmt.Println(state.AuditLog()[0].Who, state.AuditLog()[0].Reason)
	// Output:
	// 201 Created fb-pangyo
	// alice power work
}
