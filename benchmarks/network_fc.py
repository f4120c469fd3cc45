"""Network's fully connected part at 2 % weights per layer: dense (masked weights) vs to_sparse.

Run: python -m benchmarks.network_fc (prints the speed-ups at batch 128 and batch 1)."""
import statistics, time, torch, torch.nn.utils.prune as prune, lth_prune
from lth_prune.models import Network
torch.manual_seed(0)
model = Network().eval()
for layer in model.classifier:
    if isinstance(layer, torch.nn.Linear):
        lth_prune.lottery_ticket_unstructured(layer, "weight", amount=0.98)
fc = model.classifier
dense = lth_prune.sparse._permanent_copy(fc)          # masked weights as plain dense tensors
for layer in dense:
    if isinstance(layer, torch.nn.Linear):
        print("layer density", round(float((layer.weight != 0).float().mean()), 4), tuple(layer.weight.shape))
for batch in (128, 1):
    x = torch.randn(batch, fc[0].in_features)
    sparse = lth_prune.to_sparse(fc, example_input=x)
    kinds = [type(m).__name__ for m in sparse if not isinstance(m, torch.nn.ReLU)]
    def median(f, n=30):
        with torch.inference_mode():
            f(); f(); times = []
            for _ in range(n):
                t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
        return statistics.median(times)
    with torch.inference_mode():
        assert torch.allclose(sparse(x), dense(x), atol=1e-4)
    d, s = median(lambda: dense(x)), median(lambda: sparse(x))
    print(f"batch {batch}: dense {d*1e3:.3f} ms, to_sparse {s*1e3:.3f} ms, speed-up {d/s:.1f}x, layers {kinds}")
