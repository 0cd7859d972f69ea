//! The README's Slurm example, run for real: a sweep submitted as a job array of 4 shards
//! (`sbatch --array=1-4`, each task `qc sweep ... --shard $SLURM_ARRAY_TASK_ID/4`) to a one-node
//! cluster on this machine, merged with `qc sweep merge`, must give the one-machine run's lines
//! and front, line for line. Runs when `QC_SLURM_TEST=1` (`.ci/run` sets it after
//! `.ci/slurm-up.sh` has started the cluster); otherwise it says so and checks nothing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../../../tests/src/fixtures.rs"]
mod fixtures;

const SWEEP: &str = "\
parameters:
  - {name: operational_array.sizes.D1, values: [4, 8, 16]}
  - {name: operational_array.sizes.D2, values: [4, 16]}
  - {name: memories.sram.size, values: [1048576, 8388608]}
  - {name: memories.dram.r_cost, values: [700, 1400]}
";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A JSON-lines file's lines without their evaluation times, sorted by design.
fn lines(path: &Path) -> Vec<String> {
    let mut v: Vec<(u64, String)> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let d = l.find("\"design\":\"").map(|i| &l[i + 10..]).unwrap();
            let design: u64 = d[..d.find('"').unwrap()].parse().unwrap();
            let secs = l.find("\"seconds\":").unwrap();
            let end = l[secs..].find([',', '}']).unwrap();
            (design, format!("{}{}", &l[..secs], &l[secs + end..]))
        })
        .collect();
    v.sort();
    v.into_iter().map(|x| x.1).collect()
}

/// The front's lines of a text summary (everything after its first line, which has timings).
fn front(summary: &str) -> Vec<String> {
    summary.lines().skip_while(|l| !l.starts_with("Pareto front")).map(str::to_string).collect()
}

#[test]
fn slurm_job_array_merges_to_the_one_machine_front() {
    if std::env::var_os("QC_SLURM_TEST").is_none() {
        eprintln!(
            "Slurm test not run: set QC_SLURM_TEST=1 with a Slurm cluster up (.ci/run starts one with .ci/slurm-up.sh)"
        );
        return;
    }
    let qc = env!("CARGO_BIN_EXE_qc");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, text) in
        [("net.yaml", fixtures::SMALL_NET), ("npu.yaml", fixtures::SMALL_NPU), ("sweep.yaml", SWEEP)]
    {
        std::fs::write(d.join(name), text).unwrap();
    }
    let base = ["sweep", "net.yaml", "--accelerator", "npu.yaml", "--sweep", "sweep.yaml", "--opt", "energy"];

    // One machine.
    let t = Instant::now();
    let whole = run(Command::new(qc).current_dir(d).args(base).args(["-o", "whole.jsonl", "-q"]));
    let one_machine = t.elapsed();

    // The README's job script, 4 shards of one CPU each.
    let script = format!(
        "#!/bin/bash\n#SBATCH --array=1-4\n#SBATCH --cpus-per-task=1\nset -e\n\
         '{qc}' {} \\\n    --shard \"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT\" --jobs \"$SLURM_CPUS_PER_TASK\" \\\n    \
         -o \"designs.$SLURM_ARRAY_TASK_ID.jsonl\" --quiet\n",
        base.join(" ")
    );
    std::fs::write(d.join("sweep.sbatch"), &script).unwrap();
    let t = Instant::now();
    let submitted = run(Command::new("sbatch").current_dir(d).args([
        "--parsable",
        "--job-name=qc-sweep-test",
        "--output=slurm.%a.out",
        "sweep.sbatch",
    ]));
    let job = submitted.trim().split(';').next().unwrap().to_string();
    // Wait for the array (squeue lists it while any task is pending or running).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let q = run(Command::new("squeue").args(["-h", "-j", &job, "-o", "%i %t"]));
        if q.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "job array {job} still queued after 300 s:\n{q}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let on_slurm = t.elapsed();
    // Each task completed with exit code 0 (slurmctld keeps finished jobs for MinJobAge, 300 s).
    let states = run(Command::new("scontrol").args(["show", "job", &job, "-o"]));
    let tasks: Vec<&str> = states.lines().filter(|l| l.contains("ArrayTaskId=")).collect();
    assert_eq!(tasks.len(), 4, "{states}");
    for t in &tasks {
        assert!(t.contains("JobState=COMPLETED") && t.contains("ExitCode=0:0"), "a task failed: {t}");
    }
    let shards: Vec<String> = (1..=4).map(|i| format!("designs.{i}.jsonl")).collect();
    for s in &shards {
        assert_eq!(lines(&d.join(s)).len(), 6, "{s}: a quarter of the 24 designs");
    }
    let merged = run(Command::new(qc).current_dir(d).args(["sweep", "merge"]).args(&shards).args([
        "-o",
        "designs.jsonl",
        "--html",
        "front.html",
    ]));
    assert_eq!(lines(&d.join("designs.jsonl")), lines(&d.join("whole.jsonl")), "merged lines differ");
    let (f, w) = (front(&merged), front(&whole));
    assert!(f.len() > 1 && f.len() < 25, "a front of some of the 24 designs: {merged}");
    assert_eq!(f, w, "the merged front is not the one-machine front");
    assert!(merged.starts_with("24 designs from 4 file(s) evaluated"), "{merged}");
    assert!(std::fs::read_to_string(d.join("front.html")).unwrap().contains("<circle class=\"point front\""));
    eprintln!(
        "Slurm job array of 4 shards: {:.1} s from sbatch to the last task (one machine: {:.1} s); front of {} of 24 designs",
        on_slurm.as_secs_f64(),
        one_machine.as_secs_f64(),
        f.len() - 1
    );
}
