{{/* Names, labels and the rendered Triage config. */}}

{{- define "triage.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "triage.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels every object of the release carries. */}}
{{- define "triage.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "triage.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: triage
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The labels that make a pod one of this release's Triage pods (NetworkPolicy peers). */}}
{{- define "triage.releaseSelector" -}}
app.kubernetes.io/name: {{ include "triage.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector of one component: dict "root" $ "component" NAME. */}}
{{- define "triage.selector" -}}
{{ include "triage.releaseSelector" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "triage.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "triage.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "triage.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The six gRPC services, in the order of config services. */}}
{{- define "triage.serviceNames" -}}
gateway classifier policy backends context ledger
{{- end -}}

{{/* Seconds of a humantime duration ("20s", "1m30s", "500ms"), rounded up. */}}
{{- define "triage.seconds" -}}
{{- $total := 0.0 -}}
{{- $s := toString . | trim -}}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ms|s|sec|secs|m|min|mins|h|hr|hrs|d)\\s*)+$" $s) -}}
{{- fail (printf "duration %q: use a humantime duration such as 20s, 1m30s or 500ms" $s) -}}
{{- end -}}
{{- range regexFindAll "[0-9.]+[a-z]+" $s -1 -}}
{{- $n := regexFind "^[0-9.]+" . | float64 -}}
{{- $u := regexFind "[a-z]+$" . -}}
{{- if eq $u "ms" -}}{{- $total = addf $total (divf $n 1000) -}}
{{- else if has $u (list "s" "sec" "secs") -}}{{- $total = addf $total $n -}}
{{- else if has $u (list "m" "min" "mins") -}}{{- $total = addf $total (mulf $n 60) -}}
{{- else if has $u (list "h" "hr" "hrs") -}}{{- $total = addf $total (mulf $n 3600) -}}
{{- else if eq $u "d" -}}{{- $total = addf $total (mulf $n 86400) -}}
{{- end -}}
{{- end -}}
{{- ceil $total | int -}}
{{- end -}}

{{/* The drain Triage needs after SIGTERM: server.drain_delay + server.grace_period. */}}
{{- define "triage.drainSeconds" -}}
{{- $server := default dict .Values.config.server -}}
{{- $drain := include "triage.seconds" (default "2s" $server.drain_delay) | int -}}
{{- $grace := include "triage.seconds" (default "20s" $server.grace_period) | int -}}
{{- add $drain $grace -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: computed, or the value given, asserted long enough. */}}
{{- define "triage.terminationGracePeriodSeconds" -}}
{{- $need := add (int .Values.shutdown.preStopSleepSeconds) (include "triage.drainSeconds" . | int) -}}
{{- if kindIs "invalid" .Values.shutdown.terminationGracePeriodSeconds -}}
{{- add $need (int .Values.shutdown.marginSeconds) -}}
{{- else -}}
{{- $given := int .Values.shutdown.terminationGracePeriodSeconds -}}
{{- if le $given $need -}}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + server.drain_delay + server.grace_period (%d)" $given $need) -}}
{{- end -}}
{{- $given -}}
{{- end -}}
{{- end -}}

{{- define "triage.tlsOn" -}}
{{- if or .Values.tls.server.enabled .Values.tls.mtls.enabled -}}true{{- end -}}
{{- end -}}

{{- define "triage.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379/0" (include "triage.fullname" .) -}}
{{- else -}}
{{- .Values.redis.external.url -}}
{{- end -}}
{{- end -}}

{{/* Checks of combinations the schema cannot express. */}}
{{- define "triage.validate" -}}
{{- $cfg := .Values.config -}}
{{- range $k := list "services" "redis" -}}
{{- if hasKey $cfg $k -}}{{- fail (printf "config.%s is set by the chart; remove it from values" $k) -}}{{- end -}}
{{- end -}}
{{- $server := default dict $cfg.server -}}
{{- range $k := list "http_listen" "health_listen" "tls" -}}
{{- if hasKey $server $k -}}{{- fail (printf "config.server.%s is set by the chart; remove it from values" $k) -}}{{- end -}}
{{- end -}}
{{- if hasKey (default dict $cfg.auth) "keys_file" -}}{{- fail "config.auth.keys_file is set by the chart (auth.*)" -}}{{- end -}}
{{- if hasKey (default dict $cfg.policy) "file" -}}{{- fail "config.policy.file is set by the chart (policy.*)" -}}{{- end -}}
{{- if and (include "triage.tlsOn" .) (not .Values.tls.existingSecret) -}}
{{- fail "tls.server.enabled or tls.mtls.enabled needs tls.existingSecret (keys tls.crt, tls.key, ca.crt)" -}}
{{- end -}}
{{- $hp := int .Values.probes.healthPort -}}
{{- range $svc := splitList " " (include "triage.serviceNames" .) -}}
{{- if eq $hp (int (index $.Values.components $svc).port) -}}{{- fail (printf "probes.healthPort %d is components.%s.port too" $hp $svc) -}}{{- end -}}
{{- end -}}
{{- if eq $hp (int .Values.components.gateway.httpPort) -}}{{- fail (printf "probes.healthPort %d is components.gateway.httpPort too" $hp) -}}{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.redis.external.url) (not .Values.redis.external.existingSecret) -}}
{{- fail "redis.enabled is false: set redis.external.url or redis.external.existingSecret" -}}
{{- end -}}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.keys) -}}
{{- fail "auth.enabled needs auth.existingSecret or auth.keys" -}}
{{- end -}}
{{- if and .Values.auth.enabled .Values.tests.enabled (not .Values.tests.apiKeySecret) -}}
{{- fail "auth.enabled: the helm test needs a key (tests.apiKeySecret) or tests.enabled=false" -}}
{{- end -}}
{{- end -}}

{{/* /etc/triage/triage.yaml: values.config plus what the chart owns. */}}
{{- define "triage.config" -}}
{{- $root := . -}}
{{- $full := include "triage.fullname" . -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $server := default dict $cfg.server -}}
{{- $_ := set $server "http_listen" (printf "0.0.0.0:%d" (int .Values.components.gateway.httpPort)) -}}
{{- if .Values.tls.server.enabled -}}
{{- $_ := set $server "tls" (dict "cert" "/var/run/secrets/triage-tls/tls.crt" "key" "/var/run/secrets/triage-tls/tls.key") -}}
{{- end -}}
{{- if or .Values.tls.server.enabled .Values.tls.mtls.enabled -}}
{{- $_ := set $server "health_listen" (printf "0.0.0.0:%d" (int .Values.probes.healthPort)) -}}
{{- end -}}
{{- if .Values.components.operator.enabled -}}
{{- $_ := set $server "admin_token" (dict "env" "TRIAGE_ADMIN_TOKEN") -}}
{{- end -}}
{{- $_ := set $cfg "server" $server -}}
{{- $services := dict -}}
{{- range $svc := splitList " " (include "triage.serviceNames" .) -}}
{{- $port := int (index $root.Values.components $svc).port -}}
{{- $_ := set $services $svc (dict "listen" (printf "0.0.0.0:%d" $port) "connect" (printf "http://%s-%s:%d" $full $svc $port)) -}}
{{- end -}}
{{- if .Values.tls.mtls.enabled -}}
{{- $_ := set $services "tls" (dict "ca" "/var/run/secrets/triage-tls/ca.crt" "cert" "/var/run/secrets/triage-tls/tls.crt" "key" "/var/run/secrets/triage-tls/tls.key") -}}
{{- end -}}
{{- $_ := set $cfg "services" $services -}}
{{- $redisUrl := include "triage.redisUrl" . -}}
{{- if $redisUrl -}}
{{- $_ := set $cfg "redis" (dict "url" $redisUrl) -}}
{{- end -}}
{{- if .Values.auth.enabled -}}
{{- $auth := default dict $cfg.auth -}}
{{- $_ := set $auth "keys_file" (printf "/var/run/secrets/triage-auth/%s" (include "triage.authKey" .)) -}}
{{- $_ := set $cfg "auth" $auth -}}
{{- end -}}
{{- $policy := default dict $cfg.policy -}}
{{- $_ := set $policy "file" "/etc/triage/policy.yaml" -}}
{{- $_ := set $cfg "policy" $policy -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "triage.authKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretKey }}{{- else -}}keys.yaml{{- end -}}
{{- end -}}

{{- define "triage.providerKeysSecret" -}}
{{- default (printf "%s-provider-keys" (include "triage.fullname" .)) .Values.providerKeys.existingSecret -}}
{{- end -}}

{{- define "triage.authSecret" -}}
{{- default (printf "%s-auth" (include "triage.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/* The config volume: triage.yaml, policy.yaml and the drift suite, projected so that a
     ConfigMap update reaches the running pods (the policy hot-reloads). */}}
{{- define "triage.configVolume" -}}
- name: config
  projected:
    sources:
      - configMap:
          name: {{ include "triage.fullname" . }}-config
      - configMap:
          name: {{ include "triage.fullname" . }}-policy
{{- end -}}

{{/* Env every Triage container gets. */}}
{{- define "triage.env" -}}
- name: TRIAGE_HOME
  value: /opt/triage
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- /* tokio starts a worker thread per core it sees, in a pod every core of the node; the CPU
  limit (rounded up to whole cores, the node's when there is none) is what the process gets.
  More workers than cores cost cross-thread wakeups on every Redis and gRPC round trip. */}}
- name: TOKIO_WORKER_THREADS
  valueFrom:
    resourceFieldRef:
      resource: limits.cpu
      divisor: "1"
{{- if .Values.components.operator.enabled }}
- name: TRIAGE_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "triage.fullname" . }}-admin
      key: token
{{- end }}
{{- if and (not .Values.redis.enabled) .Values.redis.external.existingSecret }}
- name: TRIAGE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* Secret volumes every Triage service pod mounts (auth hashes, TLS). */}}
{{- define "triage.commonSecretVolumes" -}}
{{- if .Values.auth.enabled }}
- name: auth-keys
  secret:
    secretName: {{ include "triage.authSecret" . }}
{{- end }}
{{- if include "triage.tlsOn" . }}
- name: tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
{{- end }}
{{- end -}}

{{- define "triage.commonSecretMounts" -}}
{{- if .Values.auth.enabled }}
- name: auth-keys
  mountPath: /var/run/secrets/triage-auth
  readOnly: true
{{- end }}
{{- if include "triage.tlsOn" . }}
- name: tls
  mountPath: /var/run/secrets/triage-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* A probe of a Triage port: gRPC health on the port, or on the plain-text health port
     (server.health_listen) when the port serves TLS.
     dict "port" N "tls" BOOL "healthPort" N "p" PROBE-VALUES */}}
{{- define "triage.probe" -}}
grpc:
  port: {{ ternary .healthPort .port .tls }}
{{ toYaml .p }}
{{- end -}}
