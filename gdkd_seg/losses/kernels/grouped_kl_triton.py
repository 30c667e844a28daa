"""The Triton kernel of the grouped KD loss: its source only, undecorated.

``gpu.py`` decorates it with ``triton.jit`` (compiled for GPUs, or interpreted on CPU tensors: Triton chooses when a
function is decorated) and launches it; see there for the layout and decisions, and :mod:`gdkd_seg.losses.kernels`
for the definition and the numerics.
"""
import triton.language as tl

# Reductions over the class axis are written tl.reduce(x, 0, MAX) rather than tl.max(x, axis=0), which wraps the
# same call: compiled, the two are the same code; Triton's interpreter (the CPU tests) computes these three combine
# functions with numpy directly, and skips the re-patching of triton.language that each call of a wrapper costs
# it (about 10 ms, which made the interpreted tests 10x slower).
MAX = tl.standard._elementwise_max
MIN = tl.standard._elementwise_min
ADD = tl.standard._sum_combine

def grouped_kl_kernel(
        student, teacher, grad, valid, head_indices, head_groups, rank_groups, weights, sums,
        num_classes, num_pixels, head_size,
        s_image, s_class, s_pixel, t_image, t_class, t_pixel, g_image, g_class, g_pixel,
        v_image, v_pixel, h_image, h_slot, h_pixel,
        NUM_GROUPS: tl.constexpr, TOP_K: tl.constexpr, EXPLICIT_HEAD: tl.constexpr, HAS_VALID: tl.constexpr,
        WITH_GRAD: tl.constexpr, MASS_CLAMP: tl.constexpr, FLOAT64: tl.constexpr, BLOCK_C: tl.constexpr,
        BLOCK_P: tl.constexpr, GROUP_ROWS: tl.constexpr):
    compute = tl.float64 if FLOAT64 else tl.float32
    block = tl.program_id(0)
    image = tl.program_id(1).to(tl.int64)
    classes = tl.arange(0, BLOCK_C)
    pixels = block * BLOCK_P + tl.arange(0, BLOCK_P)
    pixel_in = pixels < num_pixels
    inside = (classes[:, None] < num_classes) & pixel_in[None, :]
    pixels = pixels.to(tl.int64)
    # weights: the group weights, then the mass weight, the temperature and the clamp's log-bounds (a tensor, so
    # float64 stays float64)
    mass_weight = tl.load(weights + NUM_GROUPS).to(compute)
    temperature = tl.load(weights + NUM_GROUPS + 1).to(compute)
    inv_t = 1.0 / temperature
    t = tl.load(teacher + image * t_image + classes[:, None] * t_class + pixels[None, :] * t_pixel,
                mask=inside, other=float('-inf')).to(compute) * inv_t
    s = tl.load(student + image * s_image + classes[:, None] * s_class + pixels[None, :] * s_pixel,
                mask=inside, other=float('-inf')).to(compute) * inv_t

    # group of every (class, pixel): the head classes in their groups, all other classes in the last group,
    # -1 outside the tensor
    group = tl.full([BLOCK_C, BLOCK_P], NUM_GROUPS - 1, tl.int32)
    if EXPLICIT_HEAD:
        for slot in range(head_size):
            offset = image * h_image + slot * h_slot + pixels * h_pixel
            head_class = tl.load(head_indices + offset, mask=pixel_in, other=-1)
            head_group = tl.load(head_groups + offset, mask=pixel_in, other=0).to(tl.int32)
            group = tl.where(classes[:, None] == head_class[None, :], head_group[None, :], group)
    else:
        # the teacher's k largest, largest first (ties: the lower class index), one max per rank
        remaining = t
        for rank in range(TOP_K):  # a loop, not unrolled: k may be the class count
            largest = tl.reduce(remaining, 0, MAX)
            taken = tl.reduce(tl.where(remaining == largest[None, :], classes[:, None], BLOCK_C), 0, MIN)
            chosen = classes[:, None] == taken[None, :]
            group = tl.where(chosen, tl.load(rank_groups + rank), group)
            remaining = tl.where(chosen, float('-inf'), remaining)
    group = tl.where(inside, group, -1)

    # each element shifted by its group's maximum: exp() never overflows, and a group far below another keeps
    # its own scale (a confident teacher's tail)
    max_t = tl.full([BLOCK_C, BLOCK_P], 0.0, compute)
    max_s = tl.full([BLOCK_C, BLOCK_P], 0.0, compute)
    for g in tl.static_range(NUM_GROUPS):
        in_group = group == g
        max_t = tl.where(in_group, tl.reduce(tl.where(in_group, t, float('-inf')), 0, MAX)[None, :], max_t)
        max_s = tl.where(in_group, tl.reduce(tl.where(in_group, s, float('-inf')), 0, MAX)[None, :], max_s)
    member = group >= 0
    shifted_t = tl.where(member, t - max_t, 0.0)
    shifted_s = tl.where(member, s - max_s, 0.0)
    exp_t = tl.where(member, tl.exp(shifted_t), 0.0)
    exp_s = tl.where(member, tl.exp(shifted_s), 0.0)
    cross = exp_t * (shifted_t - shifted_s)

    # per group: sums of exponentials and the within-group KL; group statistics kept as rows of small tiles
    rows = tl.arange(0, GROUP_ROWS)
    lse_t_rows = tl.full([GROUP_ROWS, BLOCK_P], float('-inf'), compute)
    lse_s_rows = tl.full([GROUP_ROWS, BLOCK_P], float('-inf'), compute)
    sum_t = tl.full([BLOCK_C, BLOCK_P], 1.0, compute)
    sum_s = tl.full([BLOCK_C, BLOCK_P], 1.0, compute)
    weight = tl.full([BLOCK_C, BLOCK_P], 0.0, compute)
    within = tl.full([BLOCK_P], 0.0, compute)
    if HAS_VALID:
        counted = pixel_in & (tl.load(valid + image * v_image + pixels * v_pixel, mask=pixel_in, other=0) != 0)
    else:
        counted = pixel_in
    partial = sums + (image * tl.num_programs(0) + block) * (NUM_GROUPS + 3)
    for g in tl.static_range(NUM_GROUPS):
        in_group = group == g
        group_sum_t = tl.reduce(tl.where(in_group, exp_t, 0.0), 0, ADD)
        group_sum_s = tl.reduce(tl.where(in_group, exp_s, 0.0), 0, ADD)
        group_max_t = tl.reduce(tl.where(in_group, max_t, float('-inf')), 0, MAX)
        group_max_s = tl.reduce(tl.where(in_group, max_s, float('-inf')), 0, MAX)
        nonempty = tl.reduce(in_group.to(tl.int32), 0, ADD) > 0
        kl = tl.reduce(tl.where(in_group, cross, 0.0), 0, ADD) / group_sum_t - tl.log(group_sum_t) \
            + tl.log(group_sum_s)
        kl = tl.where(nonempty, kl, 0.0)
        group_weight = tl.load(weights + g).to(compute)
        within += group_weight * kl
        tl.store(partial + 2 + g, tl.reduce(tl.where(counted, kl, 0.0), 0, ADD))
        lse_t_rows = tl.where(rows[:, None] == g, (group_max_t + tl.log(group_sum_t))[None, :], lse_t_rows)
        lse_s_rows = tl.where(rows[:, None] == g, (group_max_s + tl.log(group_sum_s))[None, :], lse_s_rows)
        sum_t = tl.where(in_group, group_sum_t[None, :], sum_t)
        sum_s = tl.where(in_group, group_sum_s[None, :], sum_s)
        weight = tl.where(in_group, group_weight, weight)

    # group masses in log space: log b(g) = lse_g - lse over all classes
    in_rows = rows[:, None] < NUM_GROUPS
    top_t = tl.reduce(lse_t_rows, 0, MAX)
    top_s = tl.reduce(lse_s_rows, 0, MAX)
    log_mass_t = lse_t_rows - (top_t + tl.log(tl.reduce(tl.where(in_rows, tl.exp(lse_t_rows - top_t[None, :]),
                                                               0.0), 0, ADD)))[None, :]
    log_mass_s = lse_s_rows - (top_s + tl.log(tl.reduce(tl.where(in_rows, tl.exp(lse_s_rows - top_s[None, :]),
                                                               0.0), 0, ADD)))[None, :]
    if MASS_CLAMP:
        # the authors' clamp of each mass to [eps, 1 − eps], in log space: a mass is above 1 − eps when the other
        # groups' together are below eps (read from their log-masses: 1 − 1e-8 has no float32 log)
        lower = tl.load(weights + NUM_GROUPS + 2).to(compute)
        upper = tl.load(weights + NUM_GROUPS + 3).to(compute)
        rest_t = tl.full([GROUP_ROWS, BLOCK_P], float('-inf'), compute)
        rest_s = tl.full([GROUP_ROWS, BLOCK_P], float('-inf'), compute)
        for g in tl.static_range(NUM_GROUPS):
            other = rows[:, None] != g
            top_other_t = tl.reduce(tl.where(other, log_mass_t, float('-inf')), 0, MAX)
            top_other_s = tl.reduce(tl.where(other, log_mass_s, float('-inf')), 0, MAX)
            top_other_t = tl.where(top_other_t == float('-inf'), 0.0, top_other_t)
            top_other_s = tl.where(top_other_s == float('-inf'), 0.0, top_other_s)
            rest_t = tl.where(rows[:, None] == g, (top_other_t + tl.log(tl.reduce(
                tl.where(other, tl.exp(log_mass_t - top_other_t[None, :]), 0.0), 0, ADD)))[None, :], rest_t)
            rest_s = tl.where(rows[:, None] == g, (top_other_s + tl.log(tl.reduce(
                tl.where(other, tl.exp(log_mass_s - top_other_s[None, :]), 0.0), 0, ADD)))[None, :], rest_s)
        clamped_t = tl.where(log_mass_t < lower, lower, tl.where(rest_t < lower, upper, log_mass_t))
        clamped_s = tl.where(log_mass_s < lower, lower, tl.where(rest_s < lower, upper, log_mass_s))
        kl_mass = tl.reduce(tl.where(in_rows, tl.exp(clamped_t) * (clamped_t - clamped_s), 0.0), 0, ADD)
        # the gradient passes where the student's mass is inside: b_s(g)·S − u(g)·b~_t(g), S = Σ u·b~_t
        passed = tl.where(in_rows & (log_mass_s >= lower) & (rest_s >= lower), tl.exp(clamped_t), 0.0)
        mass_gap = tl.where(in_rows, tl.exp(log_mass_s) * tl.reduce(passed, 0, ADD)[None, :] - passed, 0.0)
    else:
        mass_t = tl.exp(log_mass_t)
        row_nonempty = in_rows & (lse_t_rows != float('-inf'))
        kl_mass = tl.reduce(tl.where(row_nonempty, mass_t * (log_mass_t - log_mass_s), 0.0), 0, ADD)
        mass_gap = tl.where(in_rows, tl.exp(log_mass_s) - mass_t, 0.0)
    total = temperature * temperature * (mass_weight * kl_mass + within)
    tl.store(partial, tl.reduce(tl.where(counted, total, 0.0), 0, ADD))
    tl.store(partial + 1, tl.reduce(tl.where(counted, kl_mass, 0.0), 0, ADD))
    tl.store(partial + NUM_GROUPS + 2, tl.reduce(counted.to(compute), 0, ADD))

    if WITH_GRAD:
        # dL/dz_i = T·[w_mass·q_s(i)·gap(g) + w_g·(q_s(i) − q_t(i))] for class i in group g
        gap = tl.full([BLOCK_C, BLOCK_P], 0.0, compute)
        for g in tl.static_range(NUM_GROUPS):
            row_gap = tl.reduce(tl.where(rows[:, None] == g, mass_gap, 0.0), 0, ADD)
            gap = tl.where(group == g, row_gap[None, :], gap)
        q_s = exp_s / sum_s
        q_t = exp_t / sum_t
        gradient = temperature * (mass_weight * q_s * gap + weight * (q_s - q_t))
        gradient = tl.where(counted[None, :], gradient, 0.0)
        tl.store(grad + image * g_image + classes[:, None] * g_class + pixels[None, :] * g_pixel, gradient,
                 mask=inside)
