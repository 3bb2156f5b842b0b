// Command helm-render renders many Helm releases in one process, with Helm's own Go
// packages at the version tools/helm/go.mod pins, and writes for each exactly what
// `helm template NAME CHART --namespace NS --include-crds --skip-tests -f FILE... -f -`
// prints (see cmd/helm/template.go of that version). A `helm template` process spends
// most of its time starting up; this one starts once per program run.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout,
// {"id", "manifest"} or {"id", "error"}, in completion order. Requests are rendered
// concurrently, at most GOMAXPROCS at a time. `helm-render version` prints the Helm
// version it was built from.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/pkg/errors"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/release"
	"sigs.k8s.io/yaml"
)

type request struct {
	ID          int      `json:"id"`
	Release     string   `json:"release"`
	Namespace   string   `json:"namespace"`
	Chart       string   `json:"chart"`
	ValuesFiles []string `json:"values_files"`
	Values      string   `json:"values"`
	KubeVersion string   `json:"kube_version"`
	APIVersions []string `json:"api_versions"`
	Hooks       bool     `json:"hooks"`
}

type response struct {
	ID       int    `json:"id"`
	Manifest string `json:"manifest"`
	Error    string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Print(helmVersion())
		return
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<30)
	out := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(out)
	var written sync.Mutex
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var running sync.WaitGroup
	for in.Scan() {
		line := append([]byte(nil), in.Bytes()...)
		slots <- struct{}{}
		running.Add(1)
		go func() {
			defer func() { <-slots; running.Done() }()
			answer := handle(line)
			written.Lock()
			defer written.Unlock()
			// A failed write means the reader is gone; its end of stdin closes too,
			// which ends the loop below.
			if encoder.Encode(answer) == nil {
				_ = out.Flush()
			}
		}()
	}
	running.Wait()
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "helm-render:", err)
		os.Exit(1)
	}
}

func helmVersion() string {
	info, ok := debug.ReadBuildInfo()
	if ok {
		for _, dep := range info.Deps {
			if dep.Path == "helm.sh/helm/v3" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func handle(line []byte) (answer response) {
	var req request
	defer func() {
		if caught := recover(); caught != nil {
			answer = response{ID: req.ID, Error: fmt.Sprintf("helm-render: panic: %v", caught)}
		}
	}()
	if err := json.Unmarshal(line, &req); err != nil {
		return response{ID: -1, Error: "helm-render: bad request: " + err.Error()}
	}
	manifest, err := render(req)
	if err != nil {
		return response{ID: req.ID, Error: err.Error()}
	}
	return response{ID: req.ID, Manifest: manifest}
}

// render mirrors runInstall and newTemplateCmd of cmd/helm for a local chart.
func render(req request) (string, error) {
	vals, err := mergedValues(req)
	if err != nil {
		return "", err
	}
	chrt, err := loader.Load(req.Chart)
	if err != nil {
		return "", err
	}
	if err := installable(chrt); err != nil {
		return "", err
	}
	if deps := chrt.Metadata.Dependencies; deps != nil {
		if err := action.CheckDependencies(chrt, deps); err != nil {
			return "", errors.Wrap(err, "An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies")
		}
	}
	client := action.NewInstall(&action.Configuration{Log: func(string, ...interface{}) {}})
	client.DryRunOption = "true"
	client.DryRun = true
	client.ReleaseName = req.Release
	client.Replace = true
	client.ClientOnly = true
	client.IncludeCRDs = true
	client.DisableHooks = !req.Hooks
	client.Namespace = req.Namespace
	client.APIVersions = chartutil.VersionSet(req.APIVersions)
	if req.KubeVersion != "" {
		parsed, err := chartutil.ParseKubeVersion(req.KubeVersion)
		if err != nil {
			return "", fmt.Errorf("invalid kube version '%s': %s", req.KubeVersion, err)
		}
		client.KubeVersion = parsed
	}
	rel, err := client.RunWithContext(context.Background(), chrt, vals)
	if err != nil {
		return "", err
	}
	var manifests bytes.Buffer
	fmt.Fprintln(&manifests, strings.TrimSpace(rel.Manifest))
	if !client.DisableHooks {
		for _, hook := range rel.Hooks {
			if isTestHook(hook) {
				continue
			}
			fmt.Fprintf(&manifests, "---\n# Source: %s\n%s\n", hook.Path, hook.Manifest)
		}
	}
	return manifests.String(), nil
}

// mergedValues is what `-f FILE... -f -` gives: the files merged in order, then the
// request's values (JSON, read as helm reads a values file) on top.
func mergedValues(req request) (map[string]interface{}, error) {
	base, err := (&values.Options{ValueFiles: req.ValuesFiles}).MergeValues(getter.Providers{})
	if err != nil {
		return nil, err
	}
	top := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(req.Values), &top); err != nil {
		return nil, errors.Wrapf(err, "failed to parse %s", "-")
	}
	return mergeMaps(base, top), nil
}

// mergeMaps is pkg/cli/values.mergeMaps (unexported there).
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k]; ok {
				if bv, ok := bv.(map[string]interface{}); ok {
					out[k] = mergeMaps(bv, v)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

func installable(ch *chart.Chart) error {
	switch ch.Metadata.Type {
	case "", "application":
		return nil
	}
	return errors.Errorf("%s charts are not installable", ch.Metadata.Type)
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}
