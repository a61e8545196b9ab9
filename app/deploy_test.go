package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/resonance-im/resonance/internal/config"
)

// TestDeployExamples_LoadAsFlags keeps deploy/*.example.yaml in step with the
// flags: a renamed or removed flag fails here, not in an operator's hands.
func TestDeployExamples_LoadAsFlags(t *testing.T) {
	files, err := filepath.Glob("../deploy/*.example.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	for _, f := range files {
		role := Role(strings.TrimSuffix(filepath.Base(f), ".example.yaml"))
		t.Run(string(role), func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.Bind(fs, role)
			if err := config.Load(fs, []string{"--config", f}); err != nil {
				t.Fatalf("load %s: %v", f, err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("validate %s: %v", f, err)
			}
		})
	}
}

// roleFlags returns the flag names role defines.
func roleFlags(role Role) map[string]bool {
	var cfg Config
	fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
	cfg.Bind(fs, role)
	names := map[string]bool{config.FileFlag: true}
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}

// envFlag maps RESONANCE_FOO_BAR back to foo-bar.
func envFlag(env string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, config.EnvPrefix), "_", "-"))
}

func readYAMLDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		docs = append(docs, doc)
	}
}

// TestDeployCompose_EnvMatchesFlags checks every service of the compose file
// that runs resonance: its command names a role, and each RESONANCE_ variable
// it sets is a flag of that role.
func TestDeployCompose_EnvMatchesFlags(t *testing.T) {
	doc := readYAMLDocs(t, "../deploy/docker-compose.yml")[0]
	services := doc["services"].(map[string]any)
	seen := 0
	for name, raw := range services {
		svc := raw.(map[string]any)
		if _, ok := svc["build"]; !ok {
			continue
		}
		seen++
		cmd := svc["command"].([]any)
		role := Role(cmd[0].(string))
		flags := roleFlags(role)
		if len(flags) <= 1 {
			t.Fatalf("service %s: unknown role %q", name, role)
		}
		for env, v := range svc["environment"].(map[string]any) {
			if !flags[envFlag(env)] {
				t.Errorf("service %s (%s): %s is not a flag of the role", name, role, env)
			}
			t.Setenv(env, fmt.Sprint(v))
		}
		// The service starts: the binary takes its configuration.
		if _, err := loadArgs(t, role); err != nil {
			t.Errorf("service %s (%s) refused: %v", name, role, err)
		}
		for env := range svc["environment"].(map[string]any) {
			os.Unsetenv(env)
		}
		if svc["healthcheck"] == nil {
			t.Errorf("service %s has no health check", name)
		}
	}
	if seen != 3 {
		t.Fatalf("compose runs %d resonance services, want gateway, logic and task", seen)
	}
}

// TestDeployKubernetes_Manifests checks that each Deployment runs a role, has
// probes on the HTTP port, and that every RESONANCE_ key of the shared
// ConfigMap and Secret is a flag of some role and every explicit env of a
// container a flag of its role.
func TestDeployKubernetes_Manifests(t *testing.T) {
	files, _ := filepath.Glob("../deploy/k8s/*.yaml")
	anyRole := map[string]bool{}
	for _, r := range []Role{RoleGateway, RoleLogic, RoleTask} {
		for f := range roleFlags(r) {
			anyRole[f] = true
		}
	}
	kinds := map[string]int{}
	for _, f := range files {
		for _, doc := range readYAMLDocs(t, f) {
			kind, _ := doc["kind"].(string)
			kinds[kind]++
			switch kind {
			case "ConfigMap":
				checkEnvKeys(t, f, doc["data"], anyRole)
			case "Secret":
				checkEnvKeys(t, f, doc["stringData"], anyRole)
			case "Deployment":
				checkDeployment(t, f, doc)
			}
		}
	}
	if kinds["Deployment"] != 3 || kinds["PodDisruptionBudget"] != 1 || kinds["Service"] < 2 {
		t.Fatalf("manifest kinds = %v", kinds)
	}
}

func checkEnvKeys(t *testing.T, file string, data any, flags map[string]bool) {
	t.Helper()
	for k := range data.(map[string]any) {
		if strings.HasPrefix(k, config.EnvPrefix) && !flags[envFlag(k)] {
			t.Errorf("%s: %s is not a flag of any role", file, k)
		}
	}
}

func checkDeployment(t *testing.T, file string, doc map[string]any) {
	t.Helper()
	spec := dig(doc, "spec", "template", "spec").(map[string]any)
	// docs/operations.md: the grace period should exceed 30 s, the default,
	// or the kubelet kills a pod still draining.
	if grace, _ := spec["terminationGracePeriodSeconds"].(int); grace <= 30 {
		t.Errorf("%s: terminationGracePeriodSeconds = %v, want more than 30",
			file, spec["terminationGracePeriodSeconds"])
	}
	for _, raw := range spec["containers"].([]any) {
		c := raw.(map[string]any)
		role := Role(c["args"].([]any)[0].(string))
		flags := roleFlags(role)
		if len(flags) <= 1 {
			t.Fatalf("%s: container %v runs unknown role %q", file, c["name"], role)
		}
		envs, _ := c["env"].([]any)
		for _, e := range envs {
			name := e.(map[string]any)["name"].(string)
			if strings.HasPrefix(name, config.EnvPrefix) && !flags[envFlag(name)] {
				t.Errorf("%s: %s is not a flag of %s", file, name, role)
			}
		}
		for _, probe := range []string{"livenessProbe", "readinessProbe"} {
			if c[probe] == nil {
				t.Errorf("%s: %s has no %s", file, role, probe)
			}
		}
	}
}

func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		cur = cur.(map[string]any)[k]
	}
	return cur
}

// TestDeployDockerfile_StaticNonRoot guards the two properties the image
// relies on: a static binary and a non-root user.
func TestDeployDockerfile_StaticNonRoot(t *testing.T) {
	raw, err := os.ReadFile("../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "AS build"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// TestDeployDockerfile_CommandListensOnItsExposedPorts loads the image's
// default command as flags: each listener a client, a probe or a browser
// reaches from outside the container binds beyond loopback, on a port the
// image exposes. 'all' binds metrics and the web app to loopback by
// default, which a port mapping cannot reach.
func TestDeployDockerfile_CommandListensOnItsExposedPorts(t *testing.T) {
	raw, err := os.ReadFile("../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var cmd []string
	exposed := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "CMD "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "CMD ")), &cmd); err != nil {
				t.Fatalf("CMD is no JSON array: %v", err)
			}
		case strings.HasPrefix(line, "EXPOSE "):
			for _, p := range strings.Fields(strings.TrimPrefix(line, "EXPOSE ")) {
				exposed[p] = true
			}
		}
	}
	if len(cmd) == 0 || Role(cmd[0]) != RoleAll {
		t.Fatalf("CMD %q does not run all", cmd)
	}
	var cfg Config
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.Bind(fs, RoleAll)
	if err := config.Load(fs, cmd[1:]); err != nil {
		t.Fatalf("load CMD %q: %v", cmd, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("CMD %q: %v", cmd, err)
	}
	for name, addr := range map[string]string{"addr": cfg.Gateway.Addr,
		"http-listen": cfg.HTTPListen, "web-listen": cfg.WebListen} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil || loopbackAddr(addr) || !exposed[port] {
			t.Errorf("--%s %q: want a non-loopback address on an exposed port (%v)",
				name, addr, slices.Sorted(maps.Keys(exposed)))
		}
	}
}

// TestDeployKubernetes_NotificationsSwitchOn uncomments the notification
// keys of the ConfigMap and the Secret, as their comments invite, and loads
// each Deployment's role with the environment Kubernetes would give its
// container: task must receive the secret as well as the webhook, or it
// refuses to start.
func TestDeployKubernetes_NotificationsSwitchOn(t *testing.T) {
	raw, err := os.ReadFile("../deploy/k8s/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	uncommented := strings.ReplaceAll(string(raw), "# RESONANCE_NOTIFY_", "RESONANCE_NOTIFY_")
	shared := filepath.Join(t.TempDir(), "configmap.yaml")
	if err := os.WriteFile(shared, []byte(uncommented), 0o600); err != nil {
		t.Fatal(err)
	}
	sources := map[string]map[string]any{} // "ConfigMap" or "Secret" -> its data
	for _, doc := range readYAMLDocs(t, shared) {
		kind := doc["kind"].(string)
		data, _ := doc["data"].(map[string]any)
		if kind == "Secret" {
			data, _ = doc["stringData"].(map[string]any)
		}
		sources[kind] = data
	}
	if sources["ConfigMap"]["RESONANCE_NOTIFY_WEBHOOK_URL"] == nil ||
		sources["Secret"]["RESONANCE_NOTIFY_SECRET"] == nil {
		t.Fatal("configmap.yaml has no commented webhook URL and secret to switch on")
	}

	files, _ := filepath.Glob("../deploy/k8s/*.yaml")
	for _, f := range files {
		for _, doc := range readYAMLDocs(t, f) {
			if doc["kind"] != "Deployment" {
				continue
			}
			spec := dig(doc, "spec", "template", "spec").(map[string]any)
			for _, c := range spec["containers"].([]any) {
				container := c.(map[string]any)
				role := Role(container["args"].([]any)[0].(string))
				t.Run(string(role), func(t *testing.T) {
					for k, v := range containerEnv(container, sources) {
						t.Setenv(k, v)
					}
					if _, err := loadArgs(t, role); err != nil {
						t.Errorf("%s with notifications on refused: %v", role, err)
					}
				})
			}
		}
	}
}

// containerEnv returns the RESONANCE_ variables a container of a manifest
// receives from sources (its envFrom and its secretKeyRef entries).
func containerEnv(c map[string]any, sources map[string]map[string]any) map[string]string {
	out := map[string]string{}
	from, _ := c["envFrom"].([]any)
	for _, raw := range from {
		ref := raw.(map[string]any)
		kind := "ConfigMap"
		if ref["secretRef"] != nil {
			kind = "Secret"
		}
		for k, v := range sources[kind] {
			out[k] = fmt.Sprint(v)
		}
	}
	envs, _ := c["env"].([]any)
	for _, raw := range envs {
		e := raw.(map[string]any)
		name := e["name"].(string)
		if v, ok := e["value"].(string); ok {
			out[name] = strings.ReplaceAll(v, "$(POD_IP)", "10.0.0.5")
			continue
		}
		from, _ := e["valueFrom"].(map[string]any)
		ref, _ := from["secretKeyRef"].(map[string]any)
		if v, ok := sources["Secret"][fmt.Sprint(ref["key"])]; ok && ref != nil {
			out[name] = fmt.Sprint(v)
		}
	}
	for k := range out {
		if !strings.HasPrefix(k, config.EnvPrefix) {
			delete(out, k)
		}
	}
	return out
}
