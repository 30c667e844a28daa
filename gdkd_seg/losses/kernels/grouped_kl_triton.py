"""The Triton kernels of the grouped KD loss: the loss and its gradient, the means, the backward's scaling.

Imported by ``gpu.py`` only when Triton is there (it is where the layout and the decisions are written down; the
definition and the numerics are in :mod:`gdkd_seg.losses.kernels`). Each program owns ``BLOCK_P`` pixels, one lane
each, and loops over the classes, so every class load is one coalesced row of the ``(class, pixel)`` plane, no
class count is too large for the registers, and nothing crosses lanes inside the loops. Two passes over a pixel's
logits (the second from L2):

1. the teacher's top-k by insertion into ``SLOTS`` registers (or the explicit head classes / the label compared
   with each class), and the running max / sum of exponentials of every class outside the head (the tail), which
   is the only group whose members stream by;
2. with the groups' maxima and sums known: the tail's within-group cross term and the gradient of every class;
   the head classes' terms come from their registers after the loop (their gradient overwrites the tail formula
   the loop wrote at their places, in the same thread, so in program order).
"""
import triton
import triton.language as tl

# Reductions are written tl.reduce(x, 0, ADD) rather than tl.sum(x, axis=0), which wraps the same call: compiled,
# the two are the same code; Triton's interpreter (the CPU tests) computes the combine function with numpy
# directly and skips the re-patching of triton.language that each call of the wrapper costs it.
ADD = tl.standard._sum_combine


@triton.constexpr_function
def rank_group(rank_groups: int, rank: int) -> int:
    """The group of the teacher's rank-``rank`` class: 2 bits a rank of ``rank_groups`` (``RANK_GROUPS``)."""
    return (rank_groups >> (2 * rank)) & 3


@triton.jit
def _add_to_lses(max_t, sum_t, max_s, sum_s, t, s, take):
    """Add a class's teacher and student values where ``take`` to running log-sum-exps kept as ``(max, Σ exp(x −
    max))``, with one exp each (a call for both: Triton's interpreter pays per call)."""
    larger_t = t > max_t
    larger_s = s > max_s
    scale_t = tl.exp(-tl.abs(t - max_t))  # exp(max − value) when value is the new max, else exp(value − max)
    scale_s = tl.exp(-tl.abs(s - max_s))
    new_sum_t = tl.where(larger_t, sum_t * scale_t + 1.0, sum_t + scale_t)
    new_sum_s = tl.where(larger_s, sum_s * scale_s + 1.0, sum_s + scale_s)
    return (tl.where(take & larger_t, t, max_t), tl.where(take, new_sum_t, sum_t),
            tl.where(take & larger_s, s, max_s), tl.where(take, new_sum_s, sum_s))


@triton.jit
def _of_group(group, max_t, max_s, coef_t, coef_s, NUM_GROUPS: tl.constexpr):
    """Each lane's ``(max_t, max_s, coef_t, coef_s)`` of its group ``group`` from the per-group tuples."""
    picked_max_t, picked_max_s, picked_coef_t, picked_coef_s = max_t[0], max_s[0], coef_t[0], coef_s[0]
    for g in tl.static_range(1, NUM_GROUPS):
        picked_max_t = tl.where(group == g, max_t[g], picked_max_t)
        picked_max_s = tl.where(group == g, max_s[g], picked_max_s)
        picked_coef_t = tl.where(group == g, coef_t[g], picked_coef_t)
        picked_coef_s = tl.where(group == g, coef_s[g], picked_coef_s)
    return picked_max_t, picked_max_s, picked_coef_t, picked_coef_s


@triton.jit
def _log_masses(lse, NUM_GROUPS: tl.constexpr):
    """Group log-masses ``lse_g − log Σ_g exp(lse_g)`` from the groups' log-sum-exps."""
    top = lse[0]
    for g in tl.static_range(1, NUM_GROUPS):
        top = tl.maximum(top, lse[g])
    total = tl.zeros_like(top)
    for g in tl.static_range(NUM_GROUPS):
        total += tl.exp(lse[g] - top)
    log_total = top + tl.log(total)
    log_mass = ()
    for g in tl.static_range(NUM_GROUPS):
        log_mass = log_mass + (lse[g] - log_total,)
    return log_mass


@triton.jit
def _clamp_log_masses(log_mass, lower, upper, NUM_GROUPS: tl.constexpr):
    """The authors' clamp of each mass to ``[eps, 1 − eps]`` in log space (``lower``, ``upper`` its log-bounds): a
    mass is above 1 − eps when the other groups' together are below eps, read from their log-masses (1 − 1e-8 has
    no float32 log). Returns the clamped log-masses and whether each was inside."""
    clamped = ()
    inside = ()
    for g in tl.static_range(NUM_GROUPS):
        top_other = tl.full(log_mass[0].shape, float('-inf'), log_mass[0].dtype)
        for other in tl.static_range(NUM_GROUPS):
            if other != g:
                top_other = tl.maximum(top_other, log_mass[other])
        shift = tl.where(top_other == float('-inf'), 0.0, top_other)
        rest = tl.zeros_like(shift)
        for other in tl.static_range(NUM_GROUPS):
            if other != g:
                rest += tl.exp(log_mass[other] - shift)
        rest = shift + tl.log(rest)
        below = log_mass[g] < lower
        above = rest < lower
        clamped = clamped + (tl.where(below, lower, tl.where(above, upper, log_mass[g])),)
        inside = inside + (~(below | above),)
    return clamped, inside


@triton.jit
def grouped_kl_kernel(
        student, teacher, grad, valid, labels, head_indices, head_groups, weights, partials,
        num_classes, num_pixels, width, label_height, label_width, row_scale, col_scale, ignore_index,
        s_image, s_class, s_pixel, t_image, t_class, t_pixel, g_image, g_class, g_pixel, v_image, v_pixel,
        l_image, l_row, l_col, h_image, h_slot, h_pixel,
        NUM_GROUPS: tl.constexpr, HEAD: tl.constexpr, SLOTS: tl.constexpr, RANK_GROUPS: tl.constexpr,
        VALID: tl.constexpr, RESIZE_LABELS: tl.constexpr, WITH_GRAD: tl.constexpr, MASS_CLAMP: tl.constexpr,
        FLOAT64: tl.constexpr, BLOCK_P: tl.constexpr):
    """Per program: ``BLOCK_P`` pixels of one image. HEAD: 0 the teacher's top-``SLOTS`` (rank j in group
    ``RANK_GROUPS >> 2j & 3``), 1 ``SLOTS`` explicit head classes and their groups, 2 the label in group 0. VALID:
    0 every pixel, 1 a mask, 2 the labels other than ``ignore_index``. Writes the gradient of each pixel's loss
    (0 at pixels that do not count) and one row of ``partials``: the sums of the loss, the mass KL, each group's KL
    and the count of pixels."""
    compute = tl.float64 if FLOAT64 else tl.float32
    block = tl.program_id(0)
    image = tl.program_id(1).to(tl.int64)
    pixels = block * BLOCK_P + tl.arange(0, BLOCK_P)
    inside = pixels < num_pixels
    # lanes past the last pixel read the last pixel (and count for nothing), so that no class load needs a mask
    pixels = tl.minimum(pixels, num_pixels - 1).to(tl.int64)
    neg_inf = tl.full([BLOCK_P], float('-inf'), compute)
    zero = tl.zeros([BLOCK_P], compute)
    # weights: the group weights, then the mass weight, the temperature and the clamp's log-bounds (a tensor, so
    # float64 stays float64)
    mass_weight = tl.load(weights + NUM_GROUPS).to(compute)
    temperature = tl.load(weights + NUM_GROUPS + 1).to(compute)
    inv_t = 1.0 / temperature

    if VALID == 2 or HEAD == 2:
        # the label of each pixel, read where F.interpolate(mode='nearest') reads it when the sizes differ
        row = pixels // width
        col = pixels - row * width
        if RESIZE_LABELS:
            row = tl.minimum(tl.floor(row.to(tl.float32) * row_scale).to(tl.int64), label_height - 1)
            col = tl.minimum(tl.floor(col.to(tl.float32) * col_scale).to(tl.int64), label_width - 1)
        label = tl.load(labels + image * l_image + row * l_row + col * l_col, mask=inside,
                        other=ignore_index).to(tl.int32)
        labelled = label != ignore_index
    if VALID == 1:
        counted = inside & (tl.load(valid + image * v_image + pixels * v_pixel, mask=inside, other=0) != 0)
    elif VALID == 2:
        counted = inside & labelled
    else:
        counted = inside
    t_row = teacher + image * t_image + pixels * t_pixel
    s_row = student + image * s_image + pixels * s_pixel

    # the head: class, teacher and student value of each slot
    slot_class = ()
    slot_t = ()
    slot_s = ()
    slot_group = ()
    for j in tl.static_range(SLOTS):
        if HEAD == 0:
            slot_class = slot_class + (tl.full([BLOCK_P], -1, tl.int32),)
            slot_t = slot_t + (neg_inf,)
            slot_s = slot_s + (neg_inf,)
            slot_group = slot_group + (tl.full([BLOCK_P], rank_group(RANK_GROUPS, j), tl.int32),)
        else:
            if HEAD == 1:
                offset = image * h_image + j * h_slot + pixels * h_pixel
                head_class = tl.load(head_indices + offset, mask=counted, other=-1).to(tl.int32)
                slot_group = slot_group + (tl.load(head_groups + offset, mask=counted, other=0).to(tl.int32),)
            else:
                head_class = tl.where(counted, label, -1)
                slot_group = slot_group + (tl.zeros([BLOCK_P], tl.int32),)
            read = counted & (head_class >= 0) & (head_class < num_classes)
            slot_class = slot_class + (head_class,)
            slot_t = slot_t + (tl.load(t_row + head_class.to(tl.int64) * t_class, mask=read, other=0.0).to(compute)
                               * inv_t,)
            slot_s = slot_s + (tl.load(s_row + head_class.to(tl.int64) * s_class, mask=read, other=0.0).to(compute)
                               * inv_t,)

    # pass 1: the head (top-k by insertion, largest first, ties to the lower class) and the tail's running sums
    tail_max_t = neg_inf
    tail_sum_t = zero
    tail_max_s = neg_inf
    tail_sum_s = zero
    for c in range(num_classes):
        t = tl.load(t_row + tl.cast(c, tl.int64) * t_class).to(compute) * inv_t
        s = tl.load(s_row + tl.cast(c, tl.int64) * s_class).to(compute) * inv_t
        if HEAD == 0:
            index = tl.full([BLOCK_P], c, tl.int32)
            new_t = ()
            new_s = ()
            new_class = ()
            for j in tl.static_range(SLOTS):
                larger = t > slot_t[j]
                new_t = new_t + (tl.where(larger, t, slot_t[j]),)
                new_s = new_s + (tl.where(larger, s, slot_s[j]),)
                new_class = new_class + (tl.where(larger, index, slot_class[j]),)
                t, s, index = tl.where(larger, slot_t[j], t), tl.where(larger, slot_s[j], s), \
                    tl.where(larger, slot_class[j], index)
            slot_t, slot_s, slot_class = new_t, new_s, new_class
            take = index >= 0  # what falls out of the slots joins the tail (not the empty slots of the start)
        else:
            take = tl.full([BLOCK_P], True, tl.int1)
            for j in tl.static_range(SLOTS):
                take = take & (slot_class[j] != c)
        tail_max_t, tail_sum_t, tail_max_s, tail_sum_s = _add_to_lses(tail_max_t, tail_sum_t, tail_max_s, tail_sum_s,
                                                                      t, s, take)

    # each group's running sums: the tail in the last group, each slot in its own
    max_t = ()
    sum_t = ()
    max_s = ()
    sum_s = ()
    for g in tl.static_range(NUM_GROUPS):
        if g == NUM_GROUPS - 1:
            group_max_t, group_sum_t, group_max_s, group_sum_s = tail_max_t, tail_sum_t, tail_max_s, tail_sum_s
        else:
            group_max_t, group_sum_t, group_max_s, group_sum_s = neg_inf, zero, neg_inf, zero
        for j in tl.static_range(SLOTS):
            group_max_t, group_sum_t, group_max_s, group_sum_s = _add_to_lses(
                group_max_t, group_sum_t, group_max_s, group_sum_s, slot_t[j], slot_s[j], slot_group[j] == g)
        max_t = max_t + (group_max_t,)
        sum_t = sum_t + (group_sum_t,)
        max_s = max_s + (group_max_s,)
        sum_s = sum_s + (group_sum_s,)

    # the group masses in log space, their KL and its gradient factor gap(g)
    lse_t = ()
    lse_s = ()
    for g in tl.static_range(NUM_GROUPS):
        lse_t = lse_t + (max_t[g] + tl.log(sum_t[g]),)
        lse_s = lse_s + (max_s[g] + tl.log(sum_s[g]),)
    log_mass_t = _log_masses(lse_t, NUM_GROUPS)
    log_mass_s = _log_masses(lse_s, NUM_GROUPS)
    kl_mass = zero
    gap = ()
    if MASS_CLAMP:
        lower = tl.load(weights + NUM_GROUPS + 2).to(compute)
        upper = tl.load(weights + NUM_GROUPS + 3).to(compute)
        clamped_t, _ = _clamp_log_masses(log_mass_t, lower, upper, NUM_GROUPS)
        clamped_s, inside_s = _clamp_log_masses(log_mass_s, lower, upper, NUM_GROUPS)
        # the gradient passes where the student's mass is inside: b_s(g)·S − u(g)·b~_t(g), S = Σ u·b~_t
        passed_sum = zero
        for g in tl.static_range(NUM_GROUPS):
            kl_mass += tl.exp(clamped_t[g]) * (clamped_t[g] - clamped_s[g])
            passed_sum += tl.where(inside_s[g], tl.exp(clamped_t[g]), 0.0)
        for g in tl.static_range(NUM_GROUPS):
            gap = gap + (tl.exp(log_mass_s[g]) * passed_sum - tl.where(inside_s[g], tl.exp(clamped_t[g]), 0.0),)
    else:
        for g in tl.static_range(NUM_GROUPS):
            mass_t = tl.exp(log_mass_t[g])
            kl_mass += tl.where(lse_t[g] != float('-inf'), mass_t * (log_mass_t[g] - log_mass_s[g]), 0.0)
            gap = gap + (tl.exp(log_mass_s[g]) - mass_t,)

    # dL/dz_i = T·[w_mass·q_s(i)·gap(g) + w_g·(q_s(i) − q_t(i))], q = exp(z/T − max_g) / sum_g
    coef_s = ()
    coef_t = ()
    for g in tl.static_range(NUM_GROUPS):
        group_weight = tl.load(weights + g).to(compute)
        coef_s = coef_s + (temperature * (mass_weight * gap[g] + group_weight) / sum_s[g],)
        coef_t = coef_t + (temperature * group_weight / sum_t[g],)

    # pass 2: the tail's within-group cross term Σ exp(t − max_t)·((t − max_t) − (s − max_s)) and every gradient
    last: tl.constexpr = NUM_GROUPS - 1
    g_row = grad + image * g_image + pixels * g_pixel
    cross_tail = zero
    for c in range(num_classes):
        t = tl.load(t_row + tl.cast(c, tl.int64) * t_class).to(compute) * inv_t
        s = tl.load(s_row + tl.cast(c, tl.int64) * s_class).to(compute) * inv_t
        shifted_t = t - max_t[last]
        shifted_s = s - max_s[last]
        exp_t = tl.exp(shifted_t)
        exp_s = tl.exp(shifted_s)
        in_tail = tl.full([BLOCK_P], True, tl.int1)
        for j in tl.static_range(SLOTS):
            in_tail = in_tail & (slot_class[j] != c)
        cross_tail += tl.where(in_tail, exp_t * (shifted_t - shifted_s), 0.0)
        if WITH_GRAD:
            gradient = coef_s[last] * exp_s - coef_t[last] * exp_t
            tl.store(g_row + tl.cast(c, tl.int64) * g_class, tl.where(counted, gradient, 0.0), mask=inside)

    # the head's terms from its registers
    cross = ()
    for g in tl.static_range(NUM_GROUPS):
        cross = cross + (cross_tail if g == last else zero,)
    for j in tl.static_range(SLOTS):
        group = slot_group[j]
        group_max_t, group_max_s, group_coef_t, group_coef_s = _of_group(group, max_t, max_s, coef_t, coef_s,
                                                                         NUM_GROUPS)
        shifted_t = slot_t[j] - group_max_t
        shifted_s = slot_s[j] - group_max_s
        exp_t = tl.exp(shifted_t)
        exp_s = tl.exp(shifted_s)
        gradient = group_coef_s * exp_s - group_coef_t * exp_t
        new_cross = ()
        for g in tl.static_range(NUM_GROUPS):
            new_cross = new_cross + (tl.where(group == g, cross[g] + exp_t * (shifted_t - shifted_s), cross[g]),)
        cross = new_cross
        if WITH_GRAD:
            read = counted & (slot_class[j] >= 0) & (slot_class[j] < num_classes)
            tl.store(g_row + slot_class[j].to(tl.int64) * g_class, gradient, mask=read)

    # KL_g = Σ q_t·(log q_t − log q_s) = cross_g / sum_t(g) − log sum_t(g) + log sum_s(g); 0 for an empty group
    partial = partials + (image * tl.num_programs(0) + block) * (NUM_GROUPS + 3)
    within = zero
    for g in tl.static_range(NUM_GROUPS):
        kl = cross[g] / sum_t[g] - tl.log(sum_t[g]) + tl.log(sum_s[g])
        kl = tl.where(sum_t[g] == 0.0, 0.0, kl)
        within += tl.load(weights + g).to(compute) * kl
        tl.store(partial + 2 + g, tl.reduce(tl.where(counted, kl, 0.0), 0, ADD))
    total = temperature * temperature * (mass_weight * kl_mass + within)
    tl.store(partial, tl.reduce(tl.where(counted, total, 0.0), 0, ADD))
    tl.store(partial + 1, tl.reduce(tl.where(counted, kl_mass, 0.0), 0, ADD))
    tl.store(partial + NUM_GROUPS + 2, tl.reduce(counted.to(compute), 0, ADD))


@triton.jit
def means_kernel(partials, loss, parts, inv_count, num_rows, NUM_COLUMNS: tl.constexpr, BLOCK_C: tl.constexpr,
                 BLOCK_R: tl.constexpr):
    """One program: the programs' partial sums added in a fixed order (the same bits on every run), divided by the
    count of pixels: ``loss`` the mean loss, ``parts`` the mean mass KL and group KLs, ``inv_count`` 1 / count
    (1 when no pixel counts, so every mean is 0)."""
    rows = tl.arange(0, BLOCK_R)
    columns = tl.arange(0, BLOCK_C)
    in_columns = columns < NUM_COLUMNS
    sums = tl.zeros([BLOCK_R, BLOCK_C], partials.dtype.element_ty)
    for start in range(0, num_rows, BLOCK_R):
        at = (start + rows)[:, None]
        sums += tl.load(partials + at * NUM_COLUMNS + columns[None, :], mask=(at < num_rows) & in_columns[None, :],
                        other=0.0)
    total = tl.reduce(sums, 0, ADD)
    count = tl.reduce(tl.where(columns == NUM_COLUMNS - 1, total, 0.0), 0, ADD)
    scale = 1.0 / tl.maximum(count, 1.0)
    means = total * scale
    tl.store(loss + columns, means, mask=columns == 0)
    tl.store(parts + columns - 1, means, mask=(columns >= 1) & (columns < NUM_COLUMNS - 1))
    tl.store(inv_count, scale)


@triton.jit
def scale_gradient_kernel(grad, out, loss_grad, inv_count, numel, BLOCK: tl.constexpr):
    """``out = grad × loss_grad × inv_count`` in ``out``'s dtype, over the dense storage of both."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    within = offsets < numel
    factor = tl.load(loss_grad).to(grad.dtype.element_ty) * tl.load(inv_count)
    values = tl.load(grad + offsets, mask=within, other=0.0) * factor
    tl.store(out + offsets, values.to(out.dtype.element_ty), mask=within)
