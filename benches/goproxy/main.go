// A reverse proxy on Go's standard library (net/http/httputil.ReverseProxy), the core of the KEDA HTTP
// add-on's interceptor and of Knative's activator: the peer LeanNodes is compared with.
//
//	goproxy LISTEN_ADDR BACKEND_URL [hold]
//
// With `hold`, every request waits until the backend accepts TCP connections (one goroutine dials it
// every 2 ms), then is proxied: the way the KEDA interceptor holds a request until its Deployment has a
// ready endpoint. The memory-per-held-request benchmark measures this mode.
//
// Runs with GOMAXPROCS from the environment (the benchmark sets 1, as one worker for every proxy).
package main

import (
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 && !(len(os.Args) == 4 && os.Args[3] == "hold") {
		log.Fatal("usage: goproxy LISTEN_ADDR BACKEND_URL [hold]")
	}
	backend, err := url.Parse(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	proxy.Transport = &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	var handler http.Handler = proxy
	if len(os.Args) == 4 {
		ready := make(chan struct{})
		go func() {
			for {
				if conn, err := net.DialTimeout("tcp", backend.Host, time.Second); err == nil {
					conn.Close()
					close(ready)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-ready:
				proxy.ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		})
	}
	log.Fatal(http.ListenAndServe(os.Args[1], handler))
}
