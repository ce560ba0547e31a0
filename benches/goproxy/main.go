// A reverse proxy on Go's standard library (net/http/httputil.ReverseProxy), the core of the KEDA HTTP
// add-on's interceptor and of Knative's activator: the peer LeanNodes' warm path is compared with.
//
//	goproxy LISTEN_ADDR BACKEND_URL
//
// Runs with GOMAXPROCS from the environment (the benchmark sets 1, as one worker for every proxy).
package main

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: goproxy LISTEN_ADDR BACKEND_URL")
	}
	backend, err := url.Parse(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	proxy.Transport = &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	log.Fatal(http.ListenAndServe(os.Args[1], proxy))
}
