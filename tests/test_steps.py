"""Each jitted step lowers its loss on a fixed toy batch; multi-step calls equal single steps."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from adda_jax import steps
from adda_jax.models import make_networks
from tests import conftest

NETS = make_networks(28, 1, "features", (32, 32))


def toy_batch(seed=0, n=32):
  labels = np.random.default_rng(seed).integers(0, 10, n)
  images = conftest.digit_images(labels, 28, 1, seed).astype(np.float32) / 255.0
  return jnp.asarray(images), jnp.asarray(labels, jnp.int32)


def adapt_setup():
  """Adapt optimisers, frozen {M_s, C} and a fresh adapt state with M_t = M_s."""
  tx_t, tx_d = steps.adapt_optimizer(2e-4, 0.5), steps.adapt_optimizer(2e-4, 0.5)
  source_encoder = NETS.encoder.init(jax.random.key(0))
  frozen = {"source_encoder": source_encoder,
            "classifier": NETS.classifier.init(jax.random.key(1))}
  state = steps.init_adapt(NETS, tx_t, tx_d, source_encoder, jax.random.key(2))
  return tx_t, tx_d, frozen, state


@pytest.mark.parametrize("solver", ["adam", "caffe_lenet"])
def test_pretrain_step_lowers_cross_entropy(solver):
  tx = (steps.caffe_lenet_solver() if solver == "caffe_lenet"
        else steps.pretrain_optimizer(1e-3, 0.9, 2.5e-5))
  state = steps.init_pretrain(NETS, tx, jax.random.key(0))
  images, labels = toy_batch()
  step = jax.jit(functools.partial(steps.pretrain_step, NETS, tx))
  _, first = step(state, images, labels)
  for _ in range(15):
    state, metrics = step(state, images, labels)
  assert int(state["step"]) == 15
  assert float(metrics["loss"]) < 0.5 * float(first["loss"])


def test_weight_decay_only_on_kernels():
  mask = steps.kernel_mask(NETS.encoder.init(jax.random.key(0)))
  assert mask["conv1"]["kernel"] and not mask["conv1"]["bias"] and mask["fc"]["kernel"]


def test_caffe_lenet_solver_follows_caffes_update_rule():
  """Two steps by hand: history = 0.9 history + rate * lr_mult * (g + 5e-4 w); w -= history,
  rate = 0.01 (1 + 1e-4 i)^-0.75, lr_mult 2 on the bias."""
  params = {"fc": {"kernel": jnp.array([1.0, -2.0]), "bias": jnp.array([0.5])}}
  grads = [{"fc": {"kernel": jnp.array([0.3, 0.1]), "bias": jnp.array([-0.2])}},
           {"fc": {"kernel": jnp.array([-0.4, 0.2]), "bias": jnp.array([0.6])}}]
  tx = steps.caffe_lenet_solver()
  opt = tx.init(params)
  expected = jax.tree.map(np.asarray, params)
  history = jax.tree.map(np.zeros_like, expected)
  for i, g in enumerate(grads):
    updates, opt = tx.update(g, opt, params)
    params = optax.apply_updates(params, updates)
    rate = 0.01 * (1 + 1e-4 * i) ** -0.75
    for name, lr_mult in (("kernel", 1.0), ("bias", 2.0)):
      history["fc"][name] = (0.9 * history["fc"][name]
                             + rate * lr_mult * (g["fc"][name] + 5e-4 * expected["fc"][name]))
      expected["fc"][name] = expected["fc"][name] - history["fc"][name]
  chex.assert_trees_all_close(params, expected, rtol=1e-6)


def test_discriminator_step_lowers_its_loss():
  tx = steps.adapt_optimizer(2e-4, 0.5)
  params = NETS.discriminator.init(jax.random.key(0))
  opt = tx.init(params)
  key_s, key_t = jax.random.split(jax.random.key(1))
  source = jax.random.normal(key_s, (64, 500)) + 0.5
  target = jax.random.normal(key_t, (64, 500)) - 0.5
  step = jax.jit(functools.partial(steps.discriminator_step, NETS, tx))
  _, _, first = step(params, opt, source, target)
  for _ in range(20):
    params, opt, metrics = step(params, opt, source, target)
  assert float(metrics["disc_loss"]) < float(first["disc_loss"])
  assert float(metrics["disc_accuracy"]) > 0.9


def test_target_step_lowers_mapping_loss_and_keeps_d_fixed():
  tx = steps.adapt_optimizer(2e-4, 0.5)
  encoder = NETS.encoder.init(jax.random.key(0))
  classifier = NETS.classifier.init(jax.random.key(1))
  disc = NETS.discriminator.init(jax.random.key(2))
  opt = tx.init(encoder)
  images, _ = toy_batch(3)
  step = jax.jit(functools.partial(steps.target_step, NETS, tx, "gan", "features"))
  _, _, first = step(classifier, encoder, opt, disc, images)
  for _ in range(10):
    encoder, opt, metrics = step(classifier, encoder, opt, disc, images)
  assert float(metrics["mapping_loss"]) < float(first["mapping_loss"])


def test_adapt_step_updates_target_not_source():
  tx_t, tx_d, frozen, state = adapt_setup()
  chex.assert_trees_all_equal(state["target_encoder"], frozen["source_encoder"])  # M_t = M_s
  xs, _ = toy_batch(4)
  xt, _ = toy_batch(5)
  new, metrics = jax.jit(functools.partial(steps.adapt_step, NETS, tx_t, tx_d, "gan",
                                           "features"))(frozen, state, xs, xt)
  assert int(new["step"]) == 1
  assert set(metrics) == {"disc_loss", "disc_accuracy", "mapping_loss"}
  diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), new["target_encoder"],
                      frozen["source_encoder"])
  assert max(jax.tree.leaves(diff)) > 0


def pretrain_call(**kwargs):
  tx = steps.pretrain_optimizer(1e-3, 0.9, 2.5e-5)
  step = lambda state, frozen, batches, key: steps.pretrain_step(
      NETS, tx, state, batches["source_images"], batches["source_labels"])
  call = steps.make_stage_call(step, {"source": ("source_images", "source_labels")}, 16,
                               **kwargs)
  return call, lambda: steps.init_pretrain(NETS, tx, jax.random.key(0))


def test_multi_step_calls_equal_single_calls():
  """Unrolled (CPU) and looped (accelerator) calls of several steps equal one step per call."""
  data = {"source": steps.DeviceData(*toy_batch(6, 64))}
  key = jax.random.key(7)
  results = []
  for rolled, per_call in ((False, 1), (False, 4), (True, 4)):
    call, init = pretrain_call(rolled=rolled)
    results.append(steps.run_calls(lambda state, n: call(state, {}, data, key, num_steps=n),
                                   init(), 6, steps_per_call=per_call))
  (a, ma), *others = results
  for b, mb in others:
    assert int(a["step"]) == int(b["step"]) == 6
    chex.assert_trees_all_close(a, b, atol=1e-5)
    chex.assert_trees_all_close(ma, mb, atol=1e-5)


def test_looped_adapt_call_equals_unrolled():
  tx_t, tx_d, frozen, _ = adapt_setup()
  data = {"source": steps.DeviceData(*toy_batch(8, 64)),
          "target": steps.DeviceData(*toy_batch(9, 64))}
  step = lambda state, frozen, batches, key: steps.adapt_step(
      NETS, tx_t, tx_d, "gan", "features", frozen, state, batches["source_images"],
      batches["target_images"])
  key = jax.random.key(3)
  results = []
  for rolled in (False, True):
    call = steps.make_stage_call(step, {"source": ("source_images", "source_labels"),
                                        "target": ("target_images",)}, 16, rolled=rolled)
    results.append(call(adapt_setup()[3], frozen, data, key, num_steps=3))
  chex.assert_trees_all_close(results[0], results[1], atol=1e-5)
  assert int(results[1][0]["step"]) == 3


def test_stage_call_hands_a_step_only_the_arrays_it_names():
  """A "target" batch reaches the step as images alone: its labels never do."""
  seen = {}

  def step(state, frozen, batches, key):
    seen.update({name: value.shape for name, value in batches.items()})
    return {"step": state["step"] + 1}, {"loss": jnp.zeros(())}

  data = {"source": steps.DeviceData(*toy_batch(1, 64)),
          "target": steps.DeviceData(*toy_batch(2, 64))}
  call = steps.make_stage_call(step, {"source": ("source_images", "source_labels"),
                                      "target": ("target_images",)}, 16)
  call({"step": jnp.zeros((), jnp.int32)}, {}, data, jax.random.key(0), num_steps=1)
  assert seen == {"source_images": (16, 28, 28, 1), "source_labels": (16,),
                  "target_images": (16, 28, 28, 1)}


def test_no_recompiles_after_the_first_call():
  data = {"source": steps.DeviceData(*toy_batch(8, 64))}
  call, init = pretrain_call()
  key = jax.random.key(0)
  state = init()
  for _ in range(3):
    state, _ = steps.run_calls(lambda s, n: call(s, {}, data, key, num_steps=n), state, 4, 2)
  assert int(state["step"]) == 12
  assert call._cache_size() == 1


def test_simultaneous_update_moves_target_against_the_old_discriminator():
  tx_t, tx_d, frozen, state = adapt_setup()
  xs, _ = toy_batch(4)
  xt, _ = toy_batch(5)
  step = jax.jit(functools.partial(steps.adapt_step, NETS, tx_t, tx_d, "gan", "features"),
                 static_argnames="simultaneous")
  alternating, _ = step(frozen, state, xs, xt, simultaneous=False)
  simultaneous, _ = step(frozen, state, xs, xt, simultaneous=True)
  # Two compiled programs: equal up to float rounding (a D step moves weights by ~2e-4).
  chex.assert_trees_all_close(simultaneous["discriminator"], alternating["discriminator"],
                              atol=1e-6)
  against_old_d, _, _ = steps.target_step(NETS, tx_t, "gan", "features", frozen["classifier"],
                                          state["target_encoder"], state["target_opt"],
                                          state["discriminator"], xt)
  chex.assert_trees_all_close(simultaneous["target_encoder"], against_old_d, atol=1e-6)
  difference = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                            simultaneous["target_encoder"], alternating["target_encoder"])
  assert max(jax.tree.leaves(difference)) > 0
