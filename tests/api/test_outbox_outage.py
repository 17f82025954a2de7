#!/usr/bin/env python3
"""api.outbox_outage — Kafka down: the API keeps answering quickly, /readyz
says 503, events wait in the outbox; Kafka back: every event arrives once,
in commit order, and the backlog drains (docs/api.md "Outbox relay").

Stops and restarts the shared Kafka (keeping its data): run serially."""

import math
import time

import apitest
from apitest import event_data, metric_value, services_command

TASKS = 200


def wait_until(pred, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class OutboxOutage(apitest.ApiTestCase):
    def backlog(self):
        return metric_value(self.daemon.metrics(), "te_outbox_backlog")

    def readyz(self):
        return self.daemon.request("GET", "/readyz")

    def test_kafka_outage(self):
        c = self.new_client()
        self.assert_status(self.readyz(), 200)
        stopped = False
        try:
            out = services_command("stop", "kafka", keep=True)
            stopped = True
            apitest.log(out.stdout.strip())
            ids, latencies = [], []
            for i in range(TASKS):
                t0 = time.monotonic()
                r = c.post("/api/tasks", {"title": f"during outage {i}"})
                latencies.append(time.monotonic() - t0)
                self.assert_status(r, 201)
                ids.append(r.json["id"])
            p99 = sorted(latencies)[math.ceil(0.99 * TASKS) - 1]
            apitest.log(f"create latency while Kafka is down: p99 {p99 * 1000:.0f} ms, "
                        f"max {max(latencies) * 1000:.0f} ms")
            self.assertLess(p99, 1.0)
            self.assert_status(self.daemon.request("GET", "/healthz"), 200)
            not_ready = wait_until(lambda: self.readyz().status == 503, 15)
            self.assertTrue(not_ready, f"/readyz with Kafka down: {self.readyz()}")
            body = self.readyz().json
            self.assertIn("kafka", body.get("checks", {}), body)
            self.assertGreater(self.backlog(), 0, "the events wait in the outbox")
        finally:
            if stopped:
                out = services_command("start", "kafka", keep=True, check=False)
                apitest.log(out.stdout.strip())
                if out.returncode != 0:
                    raise RuntimeError("could not restart Kafka")

        t0 = time.monotonic()
        records = self.tail("task.events").wait(
            c.user, lambda mine: len(mine) >= TASKS, timeout=60, what=f"{TASKS} events")
        apitest.log(f"all {TASKS} events arrived {time.monotonic() - t0:.1f} s after the restart")
        time.sleep(1)  # duplicates, if any, would follow
        records = self.tail("task.events").of(c.user)
        self.assertEqual([r["event"]["type"] for r in records],
                         ["com.todo.task.created"] * TASKS)
        self.assertEqual([event_data(r["event"]).get("task_id") for r in records], ids,
                         "each task once, in creation order")
        syncs = self.tail("sync.events").wait(c.user, lambda mine: len(mine) >= TASKS, timeout=30,
                                              what=f"{TASKS} sync events")
        self.assertEqual([event_data(r["event"]).get("seq") for r in syncs],
                         list(range(1, TASKS + 1)))
        self.assertTrue(wait_until(lambda: self.backlog() == 0, 30),
                        f"te_outbox_backlog still {self.backlog()}")
        self.assertTrue(wait_until(lambda: self.readyz().status == 200, 30), self.readyz())


if __name__ == "__main__":
    apitest.main()
