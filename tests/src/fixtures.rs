//! Accelerator and workload files written out here, for the suites that run `qc evaluate` and
//! `qc sweep` without `../shared`.

/// A small TPU-like accelerator: a 16 x 16 array, weight and output registers, a 1 MiB SRAM for
/// inputs and outputs, and a DRAM.
pub const SMALL_NPU: &str = r#"
name: small_npu
memories:
  rf_w:
    size: 64
    r_cost: 0.1
    w_cost: 0.1
    area: 0
    latency: 1
    operands: [I2]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I2, tl"]}
      - {name: w_port_1, type: write, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I2, fh"]}
    served_dimensions: []
  rf_o:
    size: 32
    r_cost: 0.02
    w_cost: 0.02
    area: 0
    latency: 1
    operands: [O]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, tl", "O, th"]}
      - {name: w_port_1, type: write, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, fh", "O, fl"]}
    served_dimensions: [D2]
  sram:
    size: 8388608
    r_cost: 40
    w_cost: 50
    area: 0
    latency: 1
    operands: [I1, O]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 64, bandwidth_max: 1024, allocation: ["I1, tl", "O, tl", "O, th"]}
      - {name: w_port_1, type: write, bandwidth_min: 64, bandwidth_max: 1024, allocation: ["I1, fh", "O, fh", "O, fl"]}
    served_dimensions: [D1, D2]
  dram:
    size: 10000000000
    r_cost: 700
    w_cost: 750
    area: 0
    latency: 1
    operands: [I1, I2, O]
    ports:
      - name: rw_port_1
        type: read_write
        bandwidth_min: 64
        bandwidth_max: 64
        allocation: ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]
    served_dimensions: [D1, D2]
operational_array:
  unit_energy: 0.04
  unit_area: 1
  dimensions: [D1, D2]
  sizes: [16, 16]
"#;

/// Three layers: a strided convolution, a 3x3 convolution and a fully connected layer.
pub const SMALL_NET: &str = "\
- id: 0
  name: conv1
  operator_type: Conv
  equation: O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]
  dimension_relations: [ix=2*ox+1*fx, iy=2*oy+1*fy]
  loop_dims: [B, K, G, OX, OY, C, FX, FY]
  loop_sizes: [1, 32, 1, 28, 28, 3, 3, 3]
  operand_precision: {W: 8, I: 8, O: 16, O_final: 8}
  operand_source: {I: 0, W: 0}
  pr_loop_dims: [IX, IY]
  pr_loop_sizes: [57, 57]
  padding: [[1, 1], [1, 1]]
- id: 1
  name: conv2
  operator_type: Conv
  equation: O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]
  dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
  loop_dims: [B, K, G, OX, OY, C, FX, FY]
  loop_sizes: [1, 64, 1, 28, 28, 32, 3, 3]
  operand_precision: {W: 8, I: 8, O: 16, O_final: 8}
  operand_source: {I: 0, W: 0}
  pr_loop_dims: [IX, IY]
  pr_loop_sizes: [30, 30]
  padding: [[1, 1], [1, 1]]
- id: 2
  name: fc
  operator_type: Gemm
  equation: O[b][k]+=W[k][c]*I[b][c]
  loop_dims: [B, K, C]
  loop_sizes: [1, 10, 50176]
  operand_precision: {W: 8, I: 8, O: 16, O_final: 8}
  operand_source: {I: 1, W: 2}
";
