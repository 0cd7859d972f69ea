//! The op table's gaps: ops with a schema but no shape rule or no evaluator. The lists are
//! written out so that adding an op without rules, or filling a gap, makes this test fail and the
//! list is updated consciously.

use qc_ir::{OpKind, SCHEMAS, op::UNCHECKED};
use qc_passes::ops::schema_gaps;

const NO_SHAPE_RULE: &[OpKind] = &[];
const NO_EVALUATOR: &[OpKind] = &[];

#[test]
fn gaps_in_the_op_table_are_the_known_ones() {
    let (no_shape, no_eval) = schema_gaps();
    let names = |v: &[OpKind]| v.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
    println!(
        "{} ops have a schema: {} have no shape rule, {} have no evaluator; {} more have rules but no schema",
        SCHEMAS.len(),
        no_shape.len(),
        no_eval.len(),
        UNCHECKED.len()
    );
    println!("no shape rule: [{}]", names(&no_shape));
    println!("no evaluator: [{}]", names(&no_eval));
    assert_eq!(no_shape, NO_SHAPE_RULE, "ops with a schema but no shape rule");
    assert_eq!(no_eval, NO_EVALUATOR, "ops with a schema but no evaluator");
}
