package e2e

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Flags of TestChaos; each has an environment variable for make.
var (
	chaosSeedFlag  = flag.Int64("chaos.seed", -1, "run this one seed (env MESHWORK_CHAOS_SEED)")
	chaosSeedsFlag = flag.Int("chaos.seeds", 0, "run this many seeds from -chaos.from (env MESHWORK_CHAOS_SEEDS; default 20)")
	chaosFromFlag  = flag.Int64("chaos.from", 1, "first seed of -chaos.seeds (env MESHWORK_CHAOS_FROM)")
	chaosVerbose   = flag.Bool("chaos.v", false, "log the schedule and what each op did also when a seed passes")
	chaosModeFlag  = flag.String("chaos.mode", "", "test (default), big or soak (env MESHWORK_CHAOS_MODE; MESHWORK_SOAK=1 means soak)")
	chaosParFlag   = flag.Bool("chaos.par", false, "run seeds in parallel, as many at once as go test's -parallel allows (env MESHWORK_CHAOS_PAR=1)")
)

// chaosTestSeeds is how many seeds make test runs (mode test, the first
// seeds from 1 up that chaosKnownBugs does not list).
const chaosTestSeeds = 20

// chaosKnownBugs are seeds left out of make test's fixed set, each for a
// bug the harness found that is not fixed yet (they still run when named:
// -chaos.seed=N, or -chaos.seeds=N, which runs every seed of its range).
// The bugs are timing-dependent: these seeds hit them in some runs.
var chaosKnownBugs = map[int64]string{
	// Empty. Seed 18 was listed here (replicas disagreeing on a conflict
	// after a delete concurrent with an update, a syncproto merge bug: an
	// edit from an old version did not take in the history of the own
	// versions it subsumed, TestConvergenceEditFromOld) until its fix,
	// 3aa325b, passed 51 runs of the seed in a row (40 on a quiet machine,
	// 11 beside a soak), all under -race.
}

func chEnvInt(name string, v int64) int64 {
	if s := os.Getenv(name); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return v
}

// chaosTestSet is make test's fixed set of seeds.
func chaosTestSet() []int64 {
	var seeds []int64
	for s := int64(1); len(seeds) < chaosTestSeeds; s++ {
		if chaosKnownBugs[s] == "" {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// chaosPlan is the mode and the seeds to run.
func chaosPlan(t *testing.T) (chaosConf, []int64) {
	mode := *chaosModeFlag
	if mode == "" {
		mode = os.Getenv("MESHWORK_CHAOS_MODE")
	}
	if mode == "" && os.Getenv("MESHWORK_SOAK") != "" {
		mode = "soak"
	}
	var c chaosConf
	switch mode {
	case "", "test":
		c = chConfTest
	case "big":
		c = chConfBig
	case "soak":
		c = chConfSoak
	default:
		t.Fatalf("chaos mode %q: want test, big or soak", mode)
	}
	if s := *chaosSeedFlag; s >= 0 {
		return c, []int64{s}
	}
	if s := chEnvInt("MESHWORK_CHAOS_SEED", -1); s >= 0 {
		return c, []int64{s}
	}
	n := int64(*chaosSeedsFlag)
	if n == 0 {
		n = chEnvInt("MESHWORK_CHAOS_SEEDS", 0)
	}
	if n == 0 {
		return c, chaosTestSet()
	}
	from := *chaosFromFlag
	if from == 1 {
		from = chEnvInt("MESHWORK_CHAOS_FROM", 1)
	}
	var seeds []int64
	for s := from; s < from+n; s++ {
		seeds = append(seeds, s)
	}
	return c, seeds
}

// TestChaos: for each seed, a random schedule of file operations, edits on
// two devices at once, edits while a device is stopped, a SIGKILL mid
// transfer, and a join, a revoke or a role change (chaos_sched_test.go),
// run against 3–5 real meshd processes sharing folder "docs"; then every
// device is started again and must converge, and invariants (a)–(f) of
// issue 20 hold (chaos_check_test.go). A failure prints the seed, the
// schedule, what each operation did and the command that replays it.
func TestChaos(t *testing.T) {
	c, seeds := chaosPlan(t)
	par := *chaosParFlag || os.Getenv("MESHWORK_CHAOS_PAR") == "1"
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			if par {
				// Each seed has its own daemons, homes, ports and log
				// directory; only the machine is shared.
				t.Parallel()
			}
			chaosRun(t, seed, c)
		})
	}
}

func chaosRun(t *testing.T, seed int64, c chaosConf) {
	n, ops := chaosSchedule(seed, c)
	r := &chRun{t: t, seed: seed, conf: c, ops: ops, holders: map[string]map[int]bool{}, what: map[string]string{}}
	began := time.Now()
	defer func() {
		if !t.Failed() {
			t.Logf("seed %d (mode %s, %d devices, %d ops) passed in %s", seed, c.Mode, n, len(ops), time.Since(began).Round(100*time.Millisecond))
			if !*chaosVerbose {
				return
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "chaos seed %d (failed: %v; mode %s, %d devices at the start, %d ops, after %s)\n", seed, t.Failed(), c.Mode, n, len(ops), time.Since(began).Round(100*time.Millisecond))
		fmt.Fprintf(&b, "replay: make chaos SEED=%d MODE=%s   or   go test ./node/e2e -count=1 -run 'TestChaos' -chaos.seed=%d -chaos.mode=%s\n", seed, c.Mode, seed, c.Mode)
		b.WriteString("schedule:\n")
		for i, o := range ops {
			fmt.Fprintf(&b, "%3d  %s\n", i, o)
		}
		b.WriteString("what the ops did:\n")
		b.WriteString(strings.Join(r.log, "\n"))
		t.Log(b.String())
	}()
	chSetup(t, r, n)
	for i, o := range ops {
		r.exec(i, o)
	}
	r.cur = len(ops)
	r.final(r.settle("final"))
}

// TestChaosSchedule: a schedule depends only on its seed, and the make
// test seeds together use every kind of operation.
func TestChaosSchedule(t *testing.T) {
	kinds := map[string]int{}
	c, seeds := chConfTest, chaosTestSet()
	for _, seed := range seeds {
		n1, a := chaosSchedule(seed, c)
		n2, b := chaosSchedule(seed, c)
		if n1 != n2 || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("seed %d: two schedules differ", seed)
		}
		for _, o := range a {
			kinds[o.Kind]++
		}
	}
	for _, k := range []string{chOpWrite, chOpAppend, chOpTruncate, chOpChmod, chOpRename, chOpMvdir, chOpDelete, chOpMkdir,
		chOpRmdir, chOpConflict, chOpStop, chOpStart, chOpKill, chOpSettle, chOpJoin, chOpRevoke, chOpReader} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the make test seeds: %v", k, kinds)
		}
	}
	t.Logf("operations in seeds %v: %v", seeds, kinds)
}
