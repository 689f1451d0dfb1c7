{{/*
Naming and labels. Every per-job helper takes a context dict built in each template:
  (dict "root" $ "key" "vaultBootstrap" "component" "vault-bootstrap" "job" .Values.vaultBootstrap)
The two jobs are iterated as `range $key := list "vaultBootstrap" "clientPatcher"`.
*/}}

{{- define "secret-origin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "secret-origin.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "secret-origin.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "secret-origin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secret-origin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "secret-origin.labels" -}}
helm.sh/chart: {{ include "secret-origin.chart" . }}
{{ include "secret-origin.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: secret-origin
{{- end }}

{{/* The catalog ConfigMap. */}}
{{- define "secret-origin.catalogName" -}}
{{- printf "%s-catalog" (include "secret-origin.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name of one job's CronJob / Job / ServiceAccount / Role: CronJob names are limited to 52. */}}
{{- define "secret-origin.componentName" -}}
{{- printf "%s-%s" (include "secret-origin.fullname" .root) .component | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "secret-origin.componentLabels" -}}
{{ include "secret-origin.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "secret-origin.serviceAccountName" -}}
{{- if .job.serviceAccount.create }}
{{- default (include "secret-origin.componentName" .) .job.serviceAccount.name }}
{{- else }}
{{- required (printf "%s.serviceAccount.name is required when serviceAccount.create is false" .key) .job.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "secret-origin.image" -}}
{{- $tag := default .root.Chart.AppVersion .job.image.tag }}
{{- if .job.image.digest }}
{{- printf "%s@%s" .job.image.repository .job.image.digest }}
{{- else }}
{{- printf "%s:%s" .job.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The run deadline handed to the job: always below the Job's activeDeadlineSeconds. */}}
{{- define "secret-origin.runDeadline" -}}
{{- $deadline := sub (int .job.job.activeDeadlineSeconds) (int .job.job.deadlineMarginSeconds) }}
{{- if lt $deadline 30 }}
{{- fail (printf "%s.job: activeDeadlineSeconds - deadlineMarginSeconds must leave the job at least 30 s (got %d)" .key $deadline) }}
{{- end }}
{{- $deadline }}
{{- end }}

{{/* Consumer ExternalSecrets of service-generated entries, grouped by namespace: {ns: [names]} (YAML). */}}
{{- define "secret-origin.consumersByNamespace" -}}
{{- $byNs := dict }}
{{- range .Values.catalog.secrets }}
{{- if eq .origin "service-generated" }}
{{- range .consumers }}
{{- $names := get $byNs .namespace | default list }}
{{- $_ := set $byNs .namespace (append $names .name | uniq | sortAlpha) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $byNs }}
{{- end }}

{{/*
The pod template shared by the CronJob and the hook Job: metadata + spec.
*/}}
{{- define "secret-origin.podTemplate" -}}
{{- $root := .root }}
{{- $job := .job }}
{{- $kubeApi := eq .component "client-patcher" }}
{{- $vaultAuth := $root.Values.vault.kubernetesAuth }}
metadata:
  labels:
    {{- include "secret-origin.componentLabels" . | nindent 4 }}
    {{- if $job.azureWorkloadIdentity.enabled }}
    azure.workload.identity/use: "true"
    {{- end }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "secret-origin.serviceAccountName" . }}
  # No automatic token: only the projected tokens this job needs are mounted (see volumes).
  automountServiceAccountToken: false
  restartPolicy: Never
  enableServiceLinks: false
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ $root.Values.podSecurityContext.runAsUser }}
    runAsGroup: {{ $root.Values.podSecurityContext.runAsGroup }}
    fsGroup: {{ $root.Values.podSecurityContext.fsGroup }}
    seccompProfile:
      type: RuntimeDefault
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "secret-origin.image" . | quote }}
      imagePullPolicy: {{ $job.image.pullPolicy }}
      args:
        - --log-format
        - {{ $root.Values.logFormat }}
        - --deadline
        - {{ include "secret-origin.runDeadline" . | quote }}
        {{- range $job.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: SECRET_CATALOG
          value: /etc/secret-origin/catalog.yaml
        - name: VAULT_ADDR
          value: {{ required "vault.addr is required" $root.Values.vault.addr | quote }}
        {{- with $root.Values.vault.namespace }}
        - name: VAULT_NAMESPACE
          value: {{ . | quote }}
        {{- end }}
        {{- if $vaultAuth.enabled }}
        - name: VAULT_AUTH_ROLE
          value: {{ $job.vaultRole | quote }}
        - name: VAULT_AUTH_MOUNT
          value: {{ $vaultAuth.mount | quote }}
        - name: VAULT_K8S_TOKEN_PATH
          value: /var/run/secrets/vault/token
        {{- end }}
        {{- if $root.Values.caBundle.configMapName }}
        - name: VAULT_CACERT
          value: /etc/secret-origin/ca/ca.crt
        - name: KEYCLOAK_CACERT
          value: /etc/secret-origin/ca/ca.crt
        {{- end }}
        {{- with $job.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $job.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        privileged: false
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
      resources:
        {{- toYaml $job.resources | nindent 8 }}
      volumeMounts:
        - name: catalog
          mountPath: /etc/secret-origin/catalog.yaml
          subPath: catalog.yaml
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if $vaultAuth.enabled }}
        - name: vault-token
          mountPath: /var/run/secrets/vault
          readOnly: true
        {{- end }}
        {{- if $kubeApi }}
        - name: kube-api-access
          mountPath: /var/run/secrets/kubernetes.io/serviceaccount
          readOnly: true
        {{- end }}
        {{- if $root.Values.caBundle.configMapName }}
        - name: ca-bundle
          mountPath: /etc/secret-origin/ca
          readOnly: true
        {{- end }}
  volumes:
    - name: catalog
      configMap:
        name: {{ include "secret-origin.catalogName" $root }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $vaultAuth.enabled }}
    # A token for Vault's Kubernetes auth only (audience {{ $vaultAuth.tokenAudience | default "<api server>" }}).
    - name: vault-token
      projected:
        defaultMode: 0440
        sources:
          - serviceAccountToken:
              path: token
              expirationSeconds: {{ $vaultAuth.tokenExpirationSeconds }}
              {{- with $vaultAuth.tokenAudience }}
              audience: {{ . | quote }}
              {{- end }}
    {{- end }}
    {{- if $kubeApi }}
    # client-patcher patches ExternalSecrets: the in-cluster API credentials, mounted explicitly.
    - name: kube-api-access
      projected:
        defaultMode: 0440
        sources:
          - serviceAccountToken:
              path: token
              expirationSeconds: 3607
          - configMap:
              name: kube-root-ca.crt
              items:
                - key: ca.crt
                  path: ca.crt
          - downwardAPI:
              items:
                - path: namespace
                  fieldRef:
                    fieldPath: metadata.namespace
    {{- end }}
    {{- if $root.Values.caBundle.configMapName }}
    - name: ca-bundle
      configMap:
        name: {{ $root.Values.caBundle.configMapName }}
        items:
          - key: {{ $root.Values.caBundle.key }}
            path: ca.crt
    {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
Job spec shared by the CronJob's jobTemplate and the hook Job. `ttl` (bool) renders
ttlSecondsAfterFinished; hooks leave clean-up to their delete policy.
*/}}
{{- define "secret-origin.jobSpec" -}}
activeDeadlineSeconds: {{ .job.job.activeDeadlineSeconds }}
backoffLimit: {{ .job.job.backoffLimit }}
{{- if and .ttl (not (kindIs "invalid" .job.job.ttlSecondsAfterFinished)) }}
ttlSecondsAfterFinished: {{ .job.job.ttlSecondsAfterFinished }}
{{- end }}
podFailurePolicy:
  rules:
    # Exit 2 = bad invocation or invalid catalog: retrying cannot help.
    - action: FailJob
      onExitCodes:
        containerName: {{ .component }}
        operator: In
        values: [2]
    # Evictions and preemptions do not count against backoffLimit.
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
template:
  {{- include "secret-origin.podTemplate" . | trim | nindent 2 }}
{{- end }}
