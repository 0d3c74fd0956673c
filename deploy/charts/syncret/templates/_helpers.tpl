{{- define "syncret.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "syncret.fullname" -}}
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

{{- define "syncret.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "syncret.selectorLabels" -}}
app.kubernetes.io/name: {{ include "syncret.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "syncret.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "syncret.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "syncret.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "syncret.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "syncret.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The namespace syncret watches: scopedNamespace, or the release namespace with scopedRBAC alone. */}}
{{- define "syncret.scope" -}}
{{- if or .Values.scopedNamespace .Values.scopedRBAC }}
{{- default (include "syncret.namespace" .) .Values.scopedNamespace }}
{{- end }}
{{- end }}

{{/* securityContext without the chart's own "enabled" switch. */}}
{{- define "syncret.securityContext" -}}
{{- toYaml (omit . "enabled") }}
{{- end }}

{{/*
Least privilege, derived from what syncret calls:
- ExternalSecrets: watched; finalizers added/removed with a patch; status patched. externalsecrets/finalizers
  update lets target Secrets carry an ownerReference with blockOwnerDeletion (OwnerReferencesPermissionEnforcement).
- SecretStores / ClusterSecretStores: watched; status patched.
- Secrets: watched (metadata only, managed ones), listed, read; written with server-side apply (patch, and create
  for new ones); deleted (deletionPolicy Delete, orphans); read for store credentials and templateFrom.
- ConfigMaps: read (templateFrom, CA bundles) and watched metadata-only (a changed templateFrom source re-renders
  its ExternalSecrets). With genericTargets.enabled also created, applied and deleted (ConfigMap targets), and
  every resource of genericTargets.resources gets its verbs. Namespaces: watched (ClusterSecretStore conditions).
- Events (events.k8s.io): created. ServiceAccounts: read (workload-identity annotations), tokens minted.
- ClusterExternalSecrets (processClusterExternalSecret, cluster-wide installs only): watched; finalizers patched;
  status patched; /finalizers update for the ownerReferences of their ExternalSecrets, which are created, applied
  (server-side apply) and deleted in the selected namespaces.
- Deployments/StatefulSets/DaemonSets: patched (`kubectl rollout restart`) for syncret.dev/rollout-on-change, only
  with rbac.rolloutRestart (patching workloads is a broad privilege).
- PushSecrets (processPushSecret): watched; finalizers and status patched; the stores they push to get ESO's
  store finalizer (patch of SecretStores / ClusterSecretStores) while a PushSecret with deletionPolicy Delete uses
  them. ClusterPushSecrets (processClusterPushSecret, cluster-wide installs only): watched, status patched,
  /finalizers update for the ownerReferences of their PushSecrets, which are created, applied and deleted.
- Leases: the leader-election Lease, in the release namespace only (Role below); with sharding also list (every
  replica reads the shard and membership Leases) and delete (a dead replica's membership Lease).
*/}}
{{- define "syncret.rules.namespaced" }}
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets", "secretstores"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets"]
  verbs: ["patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets/status", "secretstores/status"]
  verbs: ["patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
{{- if .Values.genericTargets.enabled }}
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "patch", "delete"]
{{- range .Values.genericTargets.resources }}
- apiGroups: [{{ .apiGroup | default "" | quote }}]
  resources: {{ toJson .resources }}
  verbs: {{ toJson (.verbs | default (list "get" "list" "watch" "create" "patch" "delete")) }}
{{- end }}
{{- end }}
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get"]
- apiGroups: ["generators.external-secrets.io"]
  resources: ["passwords", "uuids", "sshkeys", "fakes", "ecrauthorizationtokens", "stssessiontokens", "vaultdynamicsecrets", "webhooks", "mfas", "githubaccesstokens"]
  verbs: ["get"]
- apiGroups: ["generators.external-secrets.io"]
  resources: ["generatorstates"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- if .Values.rbac.serviceAccountTokenCreate }}
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
{{- end }}
{{- if .Values.processPushSecret }}
- apiGroups: ["external-secrets.io"]
  resources: ["pushsecrets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["pushsecrets/status"]
  verbs: ["patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["secretstores"]
  verbs: ["patch"]
{{- end }}
{{- if .Values.rbac.rolloutRestart }}
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["patch"]
{{- end }}
{{- end }}
{{- define "syncret.rules.cluster" }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clustersecretstores"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clustersecretstores/status"]
  verbs: ["patch"]
- apiGroups: ["generators.external-secrets.io"]
  resources: ["clustergenerators"]
  verbs: ["get"]
{{- if and .Values.processClusterExternalSecret (not (include "syncret.scope" .)) }}
- apiGroups: ["external-secrets.io"]
  resources: ["clusterexternalsecrets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clusterexternalsecrets/status"]
  verbs: ["patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clusterexternalsecrets/finalizers"]
  verbs: ["update"]
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets"]
  verbs: ["create", "delete"]
{{- end }}
{{- if .Values.processPushSecret }}
- apiGroups: ["external-secrets.io"]
  resources: ["clustersecretstores"]
  verbs: ["patch"]
{{- end }}
{{- if and .Values.processPushSecret .Values.processClusterPushSecret (not (include "syncret.scope" .)) }}
- apiGroups: ["external-secrets.io"]
  resources: ["clusterpushsecrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clusterpushsecrets/status"]
  verbs: ["patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clusterpushsecrets/finalizers"]
  verbs: ["update"]
- apiGroups: ["external-secrets.io"]
  resources: ["pushsecrets"]
  verbs: ["create", "delete"]
{{- end }}
{{- end }}

{{/* --generic-target-resources: configmaps and every listed resource as <plural>[.<group>]. */}}
{{- define "syncret.genericTargetResources" -}}
{{- $out := list "configmaps" }}
{{- range .Values.genericTargets.resources }}
{{- $group := .apiGroup | default "" }}
{{- range .resources }}
{{- if $group }}
{{- $out = append $out (printf "%s.%s" . $group) }}
{{- else }}
{{- $out = append $out . }}
{{- end }}
{{- end }}
{{- end }}
{{- $out | uniq | join "," }}
{{- end }}
