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
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata.annotations of an object: commonAnnotations plus `.extra` (a dict); nothing when empty. */}}
{{- define "secret-origin.annotations" -}}
{{- $all := merge (deepCopy (.extra | default dict)) (.root.Values.commonAnnotations | default dict) }}
{{- with $all }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The catalog ConfigMap: the chart's own, or existingCatalog.configMapName. */}}
{{- define "secret-origin.catalogName" -}}
{{- if .Values.existingCatalog.configMapName }}
{{- .Values.existingCatalog.configMapName }}
{{- else }}
{{- printf "%s-catalog" (include "secret-origin.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "secret-origin.catalogKey" -}}
{{- if .Values.existingCatalog.configMapName }}{{ .Values.existingCatalog.key }}{{ else }}catalog.yaml{{ end }}
{{- end }}

{{/*
The catalog as YAML text, whichever way it was given: a mapping in the values, or a string from
`--set-file catalog=catalog.yaml` (kept verbatim). Empty with existingCatalog.
*/}}
{{- define "secret-origin.catalogText" -}}
{{- if kindIs "string" .Values.catalog }}
{{- .Values.catalog }}
{{- else if .Values.catalog }}
{{- toYaml .Values.catalog }}
{{- end }}
{{- end }}

{{/* The catalog parsed (YAML of a mapping); `{}` with existingCatalog. */}}
{{- define "secret-origin.catalog" -}}
{{- $text := include "secret-origin.catalogText" . }}
{{- if $text }}
{{- $parsed := fromYaml $text }}
{{- if hasKey $parsed "Error" }}
{{- fail (printf "catalog: not a YAML mapping: %s" $parsed.Error) }}
{{- end }}
{{- toYaml $parsed }}
{{- else }}
{{- toYaml dict }}
{{- end }}
{{- end }}

{{/*
Catalog rules that span entries, checked at `helm template` so a bad catalog never reaches the
cluster (the jobs check them again, and every per-entry rule too; see docs/design.md#the-catalog).
Every problem is reported at once, each naming the entry.
*/}}
{{- define "secret-origin.validateCatalog" -}}
{{- if .Values.existingCatalog.configMapName }}
{{- if include "secret-origin.catalogText" . }}
{{- fail "catalog and existingCatalog.configMapName are both set: keep one copy of the catalog" }}
{{- end }}
{{- else }}
{{- $catalog := include "secret-origin.catalog" . | fromYaml }}
{{- if not $catalog }}
{{- fail "catalog is required: inline (catalog: {...}), from a file (--set-file catalog=catalog.yaml) or an existing ConfigMap (existingCatalog.configMapName)" }}
{{- end }}
{{- $problems := list }}
{{- $secrets := get $catalog "secrets" }}
{{- if not (and (kindIs "slice" $secrets) $secrets) }}
{{- $problems = append $problems "catalog.secrets: must be a non-empty list of entries" }}
{{- else }}
{{- $seen := dict }}
{{- range $index, $entry := $secrets }}
{{- if not (kindIs "map" $entry) }}
{{- $problems = append $problems (printf "catalog.secrets[%d]: must be a mapping" $index) }}
{{- else }}
{{- $name := toString (get $entry "name") }}
{{- $label := printf "catalog.secrets[%d] (%s)" $index $name }}
{{- if hasKey $seen $name }}
{{- $problems = append $problems (printf "%s.name: duplicate name (also secrets[%d]): two entries would own one Vault path" $label (get $seen $name)) }}
{{- else }}
{{- $_ := set $seen $name $index }}
{{- end }}
{{- $origin := get $entry "origin" }}
{{- if and (eq (toString $origin) "service-generated") (not (kindIs "map" (get $catalog "keycloak"))) }}
{{- $problems = append $problems (printf "%s: service-generated entry but no top-level `keycloak`" $label) }}
{{- end }}
{{- if and (eq (toString $origin) "external") (not (kindIs "map" (get $catalog "azureKeyVault"))) }}
{{- $problems = append $problems (printf "%s: external entry but no top-level `azureKeyVault`" $label) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if $problems }}
{{- fail (printf "invalid catalog:\n  %s" (join "\n  " $problems)) }}
{{- end }}
{{- end }}
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

{{/* registry/repository:tag or @digest; global.imageRegistry replaces the job's registry. */}}
{{- define "secret-origin.image" -}}
{{- $registry := .job.image.registry | default "" }}
{{- with .root.Values.global }}{{ with .imageRegistry }}{{ $registry = . }}{{ end }}{{ end }}
{{- $name := .job.image.repository }}
{{- if $registry }}{{ $name = printf "%s/%s" (trimSuffix "/" $registry) $name }}{{ end }}
{{- if .job.image.digest }}
{{- printf "%s@%s" $name .job.image.digest }}
{{- else }}
{{- printf "%s:%s" $name (default .root.Chart.AppVersion .job.image.tag) }}
{{- end }}
{{- end }}

{{/* imagePullSecrets and global.imagePullSecrets (names or {name: ...}), de-duplicated. */}}
{{- define "secret-origin.imagePullSecrets" -}}
{{- $names := list }}
{{- $global := list }}
{{- with .Values.global }}{{ $global = .imagePullSecrets | default list }}{{ end }}
{{- range concat (.Values.imagePullSecrets | default list) $global }}
{{- if kindIs "string" . }}{{ $names = append $names . }}{{ else }}{{ $names = append $names (get . "name") }}{{ end }}
{{- end }}
{{- range $names | uniq }}
- name: {{ . }}
{{- end }}
{{- end }}

{{/* activeDeadlineSeconds of this Job: the hook's own for a hook Job, else the job's. */}}
{{- define "secret-origin.activeDeadline" -}}
{{- if .hook }}{{ .job.hook.activeDeadlineSeconds }}{{ else }}{{ .job.job.activeDeadlineSeconds }}{{ end }}
{{- end }}

{{/* The run deadline handed to the job: always below the Job's activeDeadlineSeconds. */}}
{{- define "secret-origin.runDeadline" -}}
{{- $deadline := sub (int (include "secret-origin.activeDeadline" .)) (int .job.job.deadlineMarginSeconds) }}
{{- if lt $deadline 30 }}
{{- fail (printf "%s: %s - job.deadlineMarginSeconds must leave the job at least 30 s (got %d)" .key (.hook | ternary "hook.activeDeadlineSeconds" "job.activeDeadlineSeconds") $deadline) }}
{{- end }}
{{- $deadline }}
{{- end }}

{{/*
Consumer ExternalSecrets of service-generated entries plus clientPatcher.rbac.consumers, grouped by
namespace: {ns: [names]} (YAML).
*/}}
{{- define "secret-origin.consumersByNamespace" -}}
{{- $catalog := include "secret-origin.catalog" . | fromYaml }}
{{- $consumers := list }}
{{- range (get $catalog "secrets" | default list) }}
{{- if and (kindIs "map" .) (eq (toString (get . "origin")) "service-generated") }}
{{- $consumers = concat $consumers (get . "consumers" | default list) }}
{{- end }}
{{- end }}
{{- $consumers = concat $consumers (.Values.clientPatcher.rbac.consumers | default list) }}
{{- $byNs := dict }}
{{- range $consumers }}
{{- $names := get $byNs .namespace | default list }}
{{- $_ := set $byNs .namespace (append $names .name | uniq | sortAlpha) }}
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
  {{- /* The user's keys over the defaults; the hardening is re-imposed in case a key was nulled. */}}
  {{- $podSc := mergeOverwrite (dict "seccompProfile" (dict "type" "RuntimeDefault")) (deepCopy ($root.Values.podSecurityContext | default dict)) (dict "runAsNonRoot" true) }}
  securityContext:
    {{- toYaml $podSc | nindent 4 }}
  {{- with include "secret-origin.imagePullSecrets" $root }}
  imagePullSecrets:
    {{- . | nindent 4 }}
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
        {{- if $kubeApi }}
        {{- if $job.verifyConsumers }}
        - --consumer-timeout
        - {{ $job.consumerTimeout | quote }}
        {{- else }}
        - --no-verify-consumers
        {{- end }}
        {{- end }}
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
        {{- if $job.allowPasswordFallback }}
        - name: KEYCLOAK_ALLOW_PASSWORD_FALLBACK
          value: "true"
        {{- end }}
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $job.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $job.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- $hardening := dict "runAsNonRoot" true "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "privileged" false "capabilities" (dict "drop" (list "ALL")) }}
      {{- $sc := mergeOverwrite (dict "seccompProfile" (dict "type" "RuntimeDefault")) (deepCopy ($root.Values.securityContext | default dict)) $hardening }}
      securityContext:
        {{- toYaml $sc | nindent 8 }}
      resources:
        {{- toYaml $job.resources | nindent 8 }}
      volumeMounts:
        - name: catalog
          mountPath: /etc/secret-origin/catalog.yaml
          subPath: {{ include "secret-origin.catalogKey" $root }}
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
        {{- with $root.Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
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
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $job.nodeSelector | default $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $job.tolerations | default $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $job.affinity | default $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
Job spec shared by the CronJob's jobTemplate and the hook Job. `hook` (bool): a hook Job, with the
hook's own activeDeadlineSeconds and no ttlSecondsAfterFinished (hooks leave clean-up to their delete
policy).
*/}}
{{- define "secret-origin.jobSpec" -}}
activeDeadlineSeconds: {{ include "secret-origin.activeDeadline" . }}
backoffLimit: {{ .job.job.backoffLimit }}
{{- if and (not .hook) (not (kindIs "invalid" .job.job.ttlSecondsAfterFinished)) }}
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
