// Growable array of samples (e.g. latencies in ms); percentiles are exact
// (sorted at the end). Used by the load generators in bench/.

export class Samples {
  constructor() {
    this.data = new Float64Array(1 << 16);
    this.length = 0;
  }
  add(v) {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  summary() {
    const n = this.length;
    if (n === 0) return { count: 0 };
    const sorted = this.data.subarray(0, n).sort();
    // Nearest-rank percentile: the smallest value with at least p% of samples at or below it.
    const at = (p) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i];
    return {
      count: n,
      min: sorted[0],
      mean: sum / n,
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: sorted[n - 1],
    };
  }
}
