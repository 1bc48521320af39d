"""deploy/kubernetes and deploy/docker agree with each other and with
joule_server: every document parses, ports, probes, labels and selectors
line up, and every flag the ConfigMap passes is one the server has.

Kubernetes itself does not run here; this checks what can be checked
without it. Usage: kubernetes_manifests_test.py DEPLOY_DIR HELPFULL_FILE
"""

import os
import re
import sys
import unittest

import yaml

DEPLOY = sys.argv[1] if len(sys.argv) > 1 else "deploy"
HELPFULL = sys.argv[2] if len(sys.argv) > 2 else ""


def load_all():
    docs = []
    kdir = os.path.join(DEPLOY, "kubernetes")
    for name in sorted(os.listdir(kdir)):
        if name.endswith(".yaml") and name != "prometheus-adapter-rules.yaml":
            with open(os.path.join(kdir, name)) as f:
                docs += [d for d in yaml.safe_load_all(f) if d is not None]
    return docs


class ManifestsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.docs = load_all()
        cls.by_kind = {}
        for d in cls.docs:
            cls.by_kind.setdefault(d["kind"], []).append(d)
        cls.deployment = cls.by_kind["Deployment"][0]
        cls.pod = cls.deployment["spec"]["template"]
        cls.container = cls.pod["spec"]["containers"][0]
        cls.ports = {p["name"]: p["containerPort"]
                     for p in cls.container["ports"]}
        flags_text = cls.by_kind["ConfigMap"][0]["data"]["joule.flags"]
        cls.flags = {}
        for line in flags_text.splitlines():
            if line.strip():
                name, _, value = line.strip().lstrip("-").partition("=")
                cls.flags[name] = value

    def test_every_document_has_kind_and_name(self):
        kinds = sorted(self.by_kind)
        self.assertEqual(kinds, ["ConfigMap", "Deployment",
                                 "HorizontalPodAutoscaler", "PodMonitor",
                                 "Service"])
        for d in self.docs:
            self.assertTrue(d["apiVersion"])
            self.assertTrue(d["metadata"]["name"])

    def test_ports_agree_with_the_flags(self):
        self.assertEqual(self.ports["grpc"], int(self.flags["port"]))
        self.assertEqual(self.ports["http"], int(self.flags["http_port"]))
        self.assertEqual(self.ports["metrics"],
                         int(self.flags["metrics_port"]))
        # Pods are scraped from outside: metrics must not stay on loopback.
        self.assertEqual(self.flags["metrics_host"], "0.0.0.0")
        self.assertEqual(self.flags["host"], "0.0.0.0")
        annotations = self.pod["metadata"]["annotations"]
        self.assertEqual(annotations["prometheus.io/scrape"], "true")
        self.assertEqual(int(annotations["prometheus.io/port"]),
                         self.ports["metrics"])

    def test_flags_are_joule_server_flags(self):
        if not HELPFULL:
            self.skipTest("no --helpfull output given")
        with open(HELPFULL) as f:
            help_text = f.read()
        for name in list(self.flags) + ["flagfile"]:
            self.assertRegex(help_text, r"--%s \(" % re.escape(name),
                             "joule_server has no --%s" % name)
        self.assertEqual(self.container["args"],
                         ["--flagfile=/etc/joule/joule.flags"])

    def test_probes_use_the_health_services(self):
        c = self.container
        self.assertEqual(c["readinessProbe"]["grpc"]["port"],
                         self.ports["grpc"])
        self.assertEqual(c["readinessProbe"]["grpc"]["service"],
                         "joule.v1.Joule")
        self.assertEqual(c["livenessProbe"]["grpc"]["port"],
                         self.ports["grpc"])
        startup = c["startupProbe"]["httpGet"]
        self.assertEqual(startup["path"], "/health")
        self.assertIn(startup["port"], self.ports)
        # Liveness must not kill a replica while it says NOT_SERVING and
        # drains.
        live = c["livenessProbe"]
        self.assertGreater(live["periodSeconds"] * live["failureThreshold"],
                           self.delay() + self.grace())

    def delay(self):
        return float(self.flags["shutdown_delay_seconds"])

    def grace(self):
        return int(self.flags["shutdown_grace_seconds"])

    def test_shutdown_delay_outlasts_the_readiness_probe(self):
        # The readiness probe must see NOT_SERVING before the server starts
        # refusing calls.
        ready = self.container["readinessProbe"]
        self.assertGreaterEqual(
            self.delay(), ready["periodSeconds"] * ready["failureThreshold"])

    def test_termination_grace_covers_delay_and_drain(self):
        # The server's own delay replaces a preStop sleep, during which it
        # would still report SERVING.
        self.assertNotIn("lifecycle", self.container)
        self.assertGreater(
            self.pod["spec"]["terminationGracePeriodSeconds"],
            self.delay() + self.grace())

    def test_files_the_flags_name_are_mounted(self):
        mounts = {m["mountPath"]: m["name"]
                  for m in self.container["volumeMounts"]}
        volumes = {v["name"] for v in self.pod["spec"]["volumes"]}
        for flag in ("model", "tokenizer", "api_key_file"):
            path = self.flags[flag]
            mount = [m for m in mounts if path.startswith(m + "/")]
            self.assertTrue(mount, "--%s=%s is on no volume" % (flag, path))
            self.assertIn(mounts[mount[0]], volumes)
        self.assertIn("/etc/joule", mounts)

    def test_services_select_the_pods_and_name_their_ports(self):
        labels = self.pod["metadata"]["labels"]
        self.assertEqual(self.deployment["spec"]["selector"]["matchLabels"],
                         labels)
        services = {s["metadata"]["name"]: s for s in self.by_kind["Service"]}
        self.assertEqual(services["joule-grpc"]["spec"]["clusterIP"], "None")
        self.assertEqual(services["joule-http"]["spec"]["type"], "ClusterIP")
        for s in services.values():
            for k, v in s["spec"]["selector"].items():
                self.assertEqual(labels.get(k), v)
            for p in s["spec"]["ports"]:
                self.assertIn(p["targetPort"], self.ports)
                self.assertEqual(p["port"], self.ports[p["targetPort"]])

    def test_pod_monitor_and_autoscaler_point_at_joule(self):
        labels = self.pod["metadata"]["labels"]
        monitor = self.by_kind["PodMonitor"][0]["spec"]
        for k, v in monitor["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v)
        for endpoint in monitor["podMetricsEndpoints"]:
            self.assertIn(endpoint["port"], self.ports)
        hpa = self.by_kind["HorizontalPodAutoscaler"][0]["spec"]
        self.assertEqual(hpa["scaleTargetRef"]["kind"], "Deployment")
        self.assertEqual(hpa["scaleTargetRef"]["name"],
                         self.deployment["metadata"]["name"])
        metric = hpa["metrics"][0]["pods"]["metric"]["name"]
        with open(os.path.join(DEPLOY, "kubernetes",
                               "prometheus-adapter-rules.yaml")) as f:
            rules = yaml.safe_load(f)["rules"]
        self.assertIn(metric, [r["name"]["as"] for r in rules])
        self.assertLessEqual(hpa["minReplicas"], hpa["maxReplicas"])

    def test_dockerfile_exposes_the_ports_and_runs_the_server(self):
        with open(os.path.join(DEPLOY, "docker", "Dockerfile")) as f:
            dockerfile = f.read()
        exposed = {int(p) for p in
                   re.findall(r"^EXPOSE\s+(.*)$", dockerfile, re.M)[0].split()}
        self.assertEqual(exposed, set(self.ports.values()))
        self.assertRegex(dockerfile, r"FROM debian:12\S* AS build")
        self.assertRegex(dockerfile, r"tools/setup\.sh")
        self.assertRegex(dockerfile, r'ENTRYPOINT \["/usr/local/bin/joule_server"\]')


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
