// A raw SPDY/3.1 exec client built on moby/spdystream, the library kubectl's SPDY transport uses
// (Debian's golang-github-docker-spdystream-dev), without client-go: the upgrade is written by
// hand and the streams are opened as client-go's remotecommand v4 opens them. It runs one exec
// through the URL it is given, copies its own stdin to the remote stdin (closing it with a FIN at
// EOF), the remote stdout and stderr to its own, and writes a JSON report of what happened.
//
// Build (GOPATH mode, against the Debian package):
//
//	GO111MODULE=off GOPATH=$TMP/gopath:/usr/share/gocode go build -o spdy-exec test/clients/spdy-exec/main.go
//
// Exit status: the remote command's exit code when the error stream carried one, 0 on Success,
// 1 for any other failure (a refused upgrade, a Failure Status without an exit code).
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

type report struct {
	HTTPStatus int             `json:"httpStatus"`
	Protocol   string          `json:"protocol"`
	Streams    []string        `json:"streams"`
	Status     json.RawMessage `json:"status,omitempty"`
	Body       string          `json:"body,omitempty"`
	Error      string          `json:"error,omitempty"`
}

// bufferedConn reads first what the HTTP response reader already buffered past the 101.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func main() {
	server := flag.String("server", "", "https://HOST:PORT of the endpoint")
	token := flag.String("token", "", "bearer token")
	caFile := flag.String("ca", "", "PEM file of the CA that signed the server certificate")
	path := flag.String("path", "", "request-target, e.g. /api/v1/namespaces/NS/pods/P/exec?command=cat&stdin=true&stdout=true&stderr=true")
	reportFile := flag.String("report", "", "where to write the JSON report")
	withStdin := flag.Bool("stdin", false, "open a stdin stream and copy our stdin to it")
	flag.Parse()

	rep := &report{}
	code := run(*server, *token, *caFile, *path, *withStdin, rep)
	out, _ := json.Marshal(rep)
	if err := os.WriteFile(*reportFile, out, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "writing the report:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(server, token, caFile, path string, withStdin bool, rep *report) int {
	fail := func(err error) int {
		rep.Error = err.Error()
		return 1
	}
	u, err := url.Parse(server)
	if err != nil {
		return fail(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fail(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	// No ALPN: kubectl's SPDY round-tripper offers none either, so the upgrade is HTTP/1.1.
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: pool, ServerName: u.Hostname()})
	if err != nil {
		return fail(err)
	}
	defer conn.Close()

	req, _ := http.NewRequest("POST", server+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	for _, v := range []string{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"} {
		req.Header.Add("X-Stream-Protocol-Version", v)
	}
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	reader := bufio.NewReader(conn)
	res, err := http.ReadResponse(reader, req)
	if err != nil {
		return fail(err)
	}
	rep.HTTPStatus = res.StatusCode
	if res.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64*1024))
		rep.Body = string(body)
		return 1
	}
	rep.Protocol = res.Header.Get("X-Stream-Protocol-Version")

	spdy, err := spdystream.NewConnection(bufferedConn{conn, reader}, false)
	if err != nil {
		return fail(err)
	}
	go spdy.Serve(spdystream.NoOpStreamHandler)
	defer spdy.Close()

	// client-go's order: error, stdin, stdout, stderr; each waits for its SYN_REPLY.
	open := func(kind string) (*spdystream.Stream, error) {
		s, err := spdy.CreateStream(http.Header{"Streamtype": []string{kind}}, nil, false)
		if err != nil {
			return nil, err
		}
		if err := s.WaitTimeout(30 * time.Second); err != nil {
			return nil, fmt.Errorf("%s stream: %w", kind, err)
		}
		rep.Streams = append(rep.Streams, kind)
		return s, nil
	}
	errorStream, err := open("error")
	if err != nil {
		return fail(err)
	}
	var stdin *spdystream.Stream
	if withStdin {
		if stdin, err = open("stdin"); err != nil {
			return fail(err)
		}
	}
	stdout, err := open("stdout")
	if err != nil {
		return fail(err)
	}
	stderr, err := open("stderr")
	if err != nil {
		return fail(err)
	}

	errorText := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(errorStream)
		errorText <- data
	}()
	if stdin != nil {
		go func() {
			io.Copy(stdin, os.Stdin)
			// The half-close: an empty DATA frame with FIN.
			stdin.Close()
		}()
	}
	var outputs sync.WaitGroup
	outputs.Add(2)
	go func() { io.Copy(os.Stdout, stdout); outputs.Done() }()
	go func() { io.Copy(os.Stderr, stderr); outputs.Done() }()
	outputs.Wait()

	status := <-errorText
	if len(status) == 0 {
		return 0 // v1-v3 success
	}
	rep.Status = json.RawMessage(status)
	var decoded struct {
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		Details struct {
			Causes []struct {
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	if err := json.Unmarshal(status, &decoded); err != nil {
		return fail(fmt.Errorf("error stream is not a Status: %w", err))
	}
	if decoded.Status == "Success" {
		return 0
	}
	for _, cause := range decoded.Details.Causes {
		if cause.Reason == "ExitCode" {
			if n, err := strconv.Atoi(cause.Message); err == nil {
				return n
			}
		}
	}
	return 1
}
