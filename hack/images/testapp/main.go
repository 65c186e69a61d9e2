// testapp: an HTTP server for end-to-end tests of workloads. It listens on $PORT (default
// 8080) and answers:
//
//	/healthz        200 "ok", or 503 while the file named by $UNHEALTHY_FILE exists
//	/env?name=X     the value of environment variable X
//	/file?path=P    the content of file P (a mounted config file)
//	/hostname       the pod's hostname
//	/fetch?url=U    the body of a GET of U (service-to-service and DNS checks)
//
// With $FAIL_AT_START set it exits 1 at once, to test failed rollouts. `testapp probe URL`
// exits 0 when a GET of URL answers 200, else 1: an exec health check (compose healthcheck).
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "probe" {
		resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(os.Args[2])
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("FAIL_AT_START") != "" {
		log.Fatal("FAIL_AT_START is set: exiting")
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if file := os.Getenv("UNHEALTHY_FILE"); file != "" {
			if _, err := os.Stat(file); err == nil {
				http.Error(w, "unhealthy", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprint(w, "ok")
	})
	http.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	http.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(data)
	})
	http.HandleFunc("/hostname", func(w http.ResponseWriter, r *http.Request) {
		name, _ := os.Hostname()
		fmt.Fprint(w, name)
	})
	client := &http.Client{Timeout: 5 * time.Second}
	http.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	log.Printf("testapp listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
