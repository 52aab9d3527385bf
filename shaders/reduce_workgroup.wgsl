// Team reductions in workgroup memory, for devices without subgroup operations (e.g. the OpenGL
// backend). Same contract as reduce_subgroup.wgsl: aligned power-of-two teams inside a 1-D workgroup
// of at most 256 invocations, called by every invocation.

var<workgroup> red: array<f32, 256>;

// Kernels pass `sg_size` in both variants; without subgroups there is no such builtin.
const sg_size: u32 = 1u;

fn team_sum(v: f32, lid: u32, team: u32, sg: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    let i = lid % team;
    for (var s = team / 2u; s > 0u; s = s / 2u) {
        if (i < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[lid - i];
    workgroupBarrier();
    return total;
}

fn team_max(v: f32, lid: u32, team: u32, sg: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    let i = lid % team;
    for (var s = team / 2u; s > 0u; s = s / 2u) {
        if (i < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let total = red[lid - i];
    workgroupBarrier();
    return total;
}

// The team's sums of the four components of v, component lid % 4 in each invocation (team >= 4).
fn team_sum4(v: vec4<f32>, lid: u32, team: u32, sg: u32) -> f32 {
    return vec4<f32>(team_sum(v.x, lid, team, sg), team_sum(v.y, lid, team, sg), team_sum(v.z, lid, team, sg),
                     team_sum(v.w, lid, team, sg))[lid % 4u];
}
