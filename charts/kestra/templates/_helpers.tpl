{{/*
Helpers of the kestra-ops kestra chart.
Resource names are literal (kestra-config, kestra-standalone or, in distributed mode,
kestra-webserver/-executor/-scheduler/-worker, kestra, kestra-postgres, kestra-backup): the runbook and kestra-ops address them by these names, so install one
release per namespace.
*/}}

{{/* Chart name (the app.kubernetes.io/name label). */}}
{{- define "kestra.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* name-version, the helm.sh/chart label. */}}
{{- define "kestra.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the pods of one component; call with (dict "ctx" $ "component" "x"). */}}
{{- define "kestra.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kestra.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Common labels of every resource; call with (dict "ctx" $ "component" "x"). */}}
{{- define "kestra.labels" -}}
helm.sh/chart: {{ include "kestra.chart" .ctx }}
{{ include "kestra.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: kestra
{{- end -}}

{{/* Kestra server image, the tag defaulting to the chart's appVersion. */}}
{{- define "kestra.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The Kestra version the image runs, "X.Y.Z": image.tag (empty: the chart's appVersion) without
its leading "v" and its "-flavour" suffix (v2.0.8-slim -> 2.0.8, v1.3.2-no-plugins -> 1.3.2;
Kestra's tag scheme, see kestra_ops/upgrades/catalogue.yaml `image`). A tag that is not X.Y.Z
(latest, develop, a digest-like name) says nothing about the version: the chart's appVersion
is used. The pattern is the one kestra_ops/upgrades/version.py (VERSION_RE) uses, so the chart
and `kestra-ops values validate` agree on which tags carry a version.
*/}}
{{- define "kestra.version" -}}
{{- $pattern := `^v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}(-[A-Za-z0-9][A-Za-z0-9.-]{0,40})?$` -}}
{{- $tag := trim (toString (default .Chart.AppVersion .Values.image.tag)) -}}
{{- if not (regexMatch $pattern $tag) -}}
{{- $tag = trim (toString .Chart.AppVersion) -}}
{{- end -}}
{{- if not (regexMatch $pattern $tag) -}}
{{- fail (printf "Chart.appVersion %q is not a Kestra version (vX.Y.Z)" .Chart.AppVersion) -}}
{{- end -}}
{{- regexFind `[0-9]+\.[0-9]+\.[0-9]+` $tag -}}
{{- end -}}

{{/* "true" when the image runs Kestra 2.0 or later, else "" (use with `if include`). */}}
{{- define "kestra.isV2" -}}
{{- if semverCompare ">=2.0.0" (include "kestra.version" .) -}}true{{- end -}}
{{- end -}}

{{/* "true" or "false": Istio injection of the application pods. */}}
{{- define "kestra.istioInject" -}}
{{- ternary "true" "false" (eq (toString .Values.istio.enabled) "true") -}}
{{- end -}}

{{/* Service DNS name of Kestra inside the cluster. */}}
{{- define "kestra.serviceHost" -}}
{{- printf "kestra.%s.svc" .Release.Namespace -}}
{{- end -}}

{{/*
One Kestra server Deployment: the pod spec shared by kestra-standalone and the distributed
components (kestra-webserver, -executor, -scheduler, -worker), so every Kestra pod gets the
same config volume, Secret-backed env, probes on the management port and security context.
Call with (dict "ctx" $ "name" "kestra-x" "component" "x" "replicas" N "cfg" <component values>
"args" (list ...) ["threads" N] "spread" bool):
  args    literal words of the command line (chart constants, rendered unquoted), then
          threads, when given, as the last argument (quoted)
  replicas omitted: no spec.replicas (a HorizontalPodAutoscaler owns the count)
  cfg     replicas are passed separately; podAnnotations, resources, nodeSelector, tolerations
          and affinity are read from it (the shapes of `standalone`)
  spread  adds a topologySpreadConstraint over kubernetes.io/hostname (ScheduleAnyway);
          false for kestra-standalone, whose rendered output must not change
Env (standalone.extraEnv, e.g. JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75.0) and the
termination grace period (standalone.terminationGracePeriodSeconds) are the same in both modes.
*/}}
{{- define "kestra.deployment" -}}
{{- $c := .ctx -}}
{{- $cfg := .cfg -}}
{{- $s := $c.Values.standalone -}}
{{- $sec := $c.Values.existingSecrets -}}
{{- $dbCA := include "kestra.dbCAVolume" $c -}}
{{- $podAnnotations := dict
      "checksum/config" (include (print $c.Template.BasePath "/configmap.yaml") $c | sha256sum)
      "kubectl.kubernetes.io/default-container" "kestra"
      "sidecar.istio.io/inject" (include "kestra.istioInject" $c) -}}
{{- if $c.Values.istio.enabled }}
{{- /* start Kestra only once the proxy is up; keep the proxy until Kestra has closed its connections */ -}}
{{- $_ := set $podAnnotations "proxy.istio.io/config" `{"holdApplicationUntilProxyStarts":true,"proxyMetadata":{"EXIT_ON_ZERO_ACTIVE_CONNECTIONS":"true"}}` -}}
{{- end }}
{{- $podAnnotations = merge (deepCopy ($cfg.podAnnotations | default dict)) $podAnnotations -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $c.Release.Namespace }}
  labels:
    {{- include "kestra.labels" (dict "ctx" $c "component" .component) | nindent 4 }}
spec:
  {{- if hasKey . "replicas" }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "kestra.selectorLabels" (dict "ctx" $c "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "kestra.labels" (dict "ctx" $c "component" .component) | nindent 8 }}
        sidecar.istio.io/inject: {{ include "kestra.istioInject" $c | quote }}
      annotations:
        {{- toYaml $podAnnotations | nindent 8 }}
    spec:
      {{- with $c.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $s.terminationGracePeriodSeconds }}
      securityContext:
        # the upstream image runs as user kestra (uid/gid 1000), declared by name only,
        # so runAsNonRoot needs the numeric ids
        runAsNonRoot: true
        runAsUser: 1000
        runAsGroup: 1000
        fsGroup: 1000
        seccompProfile:
          type: RuntimeDefault
      {{- if .spread }}
      # spread the replicas of this component over nodes when the cluster allows it
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "kestra.selectorLabels" (dict "ctx" $c "component" .component) | nindent 14 }}
      {{- end }}
      containers:
        - name: kestra
          image: {{ include "kestra.image" $c | quote }}
          imagePullPolicy: {{ $c.Values.image.pullPolicy | default "IfNotPresent" }}
          args:
            {{- range .args }}
            - {{ . }}
            {{- end }}
            {{- if hasKey . "threads" }}
            - {{ .threads | quote }}
            {{- end }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
            - name: management
              containerPort: 8081
              protocol: TCP
            {{- if include "kestra.isV2" $c }}
            {{- /*
            Kestra 2.x: the worker controller's gRPC port. In `server standalone` the controller
            runs inside the pod and its worker reaches it on localhost:50051, so the Service
            does not expose it. Source:
            https://kestra.io/docs/migration-guide/v2.0.0/helm-grpc-worker-controller
            */}}
            - name: grpc
              containerPort: 50051
              protocol: TCP
            {{- end }}
          env:
            - name: MICRONAUT_CONFIG_FILES
              value: /app/confs/application.yml
            {{- /* bundled: existingSecrets.database; other modes: _database.tpl */}}
            {{- $dbPassword := splitList "\n" (include "kestra.dbPasswordRef" $c) }}
            - name: KESTRA_DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ index $dbPassword 0 | quote }}
                  key: {{ index $dbPassword 1 | quote }}
            - name: KESTRA_MINIO_ACCESS_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ $sec.minio.name | quote }}
                  key: {{ $sec.minio.accessKeyKey | quote }}
            - name: KESTRA_MINIO_SECRET_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ $sec.minio.name | quote }}
                  key: {{ $sec.minio.secretKeyKey | quote }}
            - name: KESTRA_BASIC_AUTH_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $sec.basicAuth.name | quote }}
                  key: {{ $sec.basicAuth.passwordKey | quote }}
            - name: KESTRA_ENCRYPTION_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ $sec.encryption.name | quote }}
                  key: {{ $sec.encryption.key | quote }}
            {{- with $s.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /health/liveness
              port: management
            periodSeconds: 5
            timeoutSeconds: 3
            # up to 10 minutes for the first start (database migrations)
            failureThreshold: 120
          livenessProbe:
            httpGet:
              path: /health/liveness
              port: management
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          readinessProbe:
            httpGet:
              path: /health/readiness
              port: management
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 3
          {{- with $cfg.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            allowPrivilegeEscalation: false
            privileged: false
            # Kestra writes its working directories under /tmp
            readOnlyRootFilesystem: false
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: config
              mountPath: /app/confs
              readOnly: true
            {{- if $dbCA }}
            - name: db-ca
              mountPath: {{ include "kestra.dbCAPath" $c }}
              readOnly: true
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: kestra-config
            items:
              - key: application.yml
                path: application.yml
        {{- with $dbCA }}
        - name: db-ca
          {{- . | nindent 10 }}
        {{- end }}
      {{- with $cfg.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $cfg.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $cfg.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* "true" when the chart runs Kestra's distributed mode, else "" (use with `if include`). */}}
{{- define "kestra.distributed" -}}
{{- if eq (toString .Values.mode) "distributed" -}}true{{- end -}}
{{- end -}}

{{/*
"true" when the worker HorizontalPodAutoscaler uses distributed.worker.autoscaling.metrics
(autoscaling/v2 MetricSpecs) instead of CPU: the list is not empty and the cluster serves the
metrics APIs its types read, else "" (CPU utilization, as without the list). Pods and Object
metrics are read from custom.metrics.k8s.io, External ones from external.metrics.k8s.io
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#support-for-metrics-apis);
Resource and ContainerResource need only the resource metrics every HPA needs. Helm reads the
served API versions from the cluster at install/upgrade; `helm template` offline has only the
built-in ones unless given --api-versions.
*/}}
{{- define "kestra.workerCustomMetrics" -}}
{{- $metrics := .Values.distributed.worker.autoscaling.metrics | default (list) -}}
{{- $ok := gt (len $metrics) 0 -}}
{{- range $metrics -}}
{{- if and (has .type (list "Pods" "Object")) (not ($.Capabilities.APIVersions.Has "custom.metrics.k8s.io/v1beta1")) -}}
{{- $ok = false -}}
{{- end -}}
{{- if and (eq .type "External") (not ($.Capabilities.APIVersions.Has "external.metrics.k8s.io/v1beta1")) -}}
{{- $ok = false -}}
{{- end -}}
{{- end -}}
{{- if $ok -}}true{{- end -}}
{{- end -}}
