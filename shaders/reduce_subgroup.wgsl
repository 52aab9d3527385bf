// Team reductions with subgroup shuffles (used when the device offers the `subgroup` feature).
// A "team" is an aligned group of `team` consecutive invocations (a power of two) inside a 1-D
// workgroup of at most 256. The shuffle butterfly stays inside aligned blocks of min(subgroup, team)
// lanes, so it is correct for any subgroup size: 4 on some mobile GPUs, 8 on llvmpipe, 32 on NVIDIA,
// 64 on AMD. The entry point passes `sg_size` from @builtin(subgroup_size).
// Every invocation of the workgroup must call these (they contain barriers, except when the team fits
// in a subgroup; `team` and `sg` are uniform, so all invocations take the same path).

var<workgroup> red: array<f32, 256>;

fn team_sum(v: f32, lid: u32, team: u32, sg: u32) -> f32 {
    let width = min(sg, team);
    var s = v;
    for (var off = 1u; off < width; off = off * 2u) {
        s += subgroupShuffleXor(s, off);
    }
    if (team <= sg) { // the team lies inside one subgroup: done, without workgroup memory or barriers
        return s;
    }
    let per_team = team / width;
    if (lid % width == 0u) {
        red[lid / width] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    let first = (lid / team) * per_team;
    for (var i = 0u; i < per_team; i++) {
        total += red[first + i];
    }
    workgroupBarrier();
    return total;
}

fn team_max(v: f32, lid: u32, team: u32, sg: u32) -> f32 {
    let width = min(sg, team);
    var s = v;
    for (var off = 1u; off < width; off = off * 2u) {
        s = max(s, subgroupShuffleXor(s, off));
    }
    if (team <= sg) {
        return s;
    }
    let per_team = team / width;
    if (lid % width == 0u) {
        red[lid / width] = s;
    }
    workgroupBarrier();
    let first = (lid / team) * per_team;
    var total = red[first];
    for (var i = 1u; i < per_team; i++) {
        total = max(total, red[first + i]);
    }
    workgroupBarrier();
    return total;
}

// The team's sums of the four components of v, component lid % 4 in each invocation (team >= 4): the
// first two steps of the butterfly exchange halves rather than copies, so the four sums take
// log2(team) + 1 shuffles instead of 4 log2(team).
fn team_sum4(v: vec4<f32>, lid: u32, team: u32, sg: u32) -> f32 {
    if (sg < 4u) { // the exchange of halves needs lanes 0-3 of a team in one subgroup
        return vec4<f32>(team_sum(v.x, lid, team, sg), team_sum(v.y, lid, team, sg), team_sum(v.z, lid, team, sg),
                         team_sum(v.w, lid, team, sg))[lid % 4u];
    }
    let high = (lid & 2u) != 0u;
    let half = select(v.xy, v.zw, high) + subgroupShuffleXor(select(v.zw, v.xy, high), 2u);
    let odd = (lid & 1u) != 0u;
    var s = select(half.x, half.y, odd) + subgroupShuffleXor(select(half.y, half.x, odd), 1u);
    let width = min(sg, team);
    for (var off = 4u; off < width; off = off * 2u) {
        s += subgroupShuffleXor(s, off);
    }
    if (team <= sg) {
        return s;
    }
    let per_team = team / width;
    if (lid % width < 4u) {
        red[lid / width * 4u + lid % 4u] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    let first = (lid / team) * per_team;
    for (var i = 0u; i < per_team; i++) {
        total += red[(first + i) * 4u + lid % 4u];
    }
    workgroupBarrier();
    return total;
}
