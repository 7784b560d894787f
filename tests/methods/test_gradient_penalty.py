"""The gradient-penalty term: analytic input gradient on a linear softmax model, finite differences for the
double back-propagation, and the method's effect on a deliberately overfit tiny model."""

import torch
import torch.nn.functional as F
from torch import nn

from unlearn.config import GradientPenaltyParams
from unlearn.methods.gradient_penalty import signal_and_input_grad_norm


class LinearSoftmax(nn.Module):
    """Duck-typed learner: logits = W vec(x) + b; s(x) = cross-entropy."""

    family = "supervised"

    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d, k).double()

    def signal_views(self, x):
        return [x]

    def signal(self, views, y):
        return F.cross_entropy(self.linear(views[0].flatten(1)), y, reduction="none")


def test_input_gradient_norm_equals_analytic_on_linear_softmax():
    torch.manual_seed(0)
    model = LinearSoftmax(12, 4)
    x, y = torch.randn(6, 1, 3, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])
    _, gnorm = signal_and_input_grad_norm(model, x, y, create_graph=False)
    p = torch.softmax(model.linear(x.flatten(1)), dim=1)
    analytic = ((p - F.one_hot(y, 4).double()) @ model.linear.weight).norm(dim=1)  # ||W^T (p - y)||
    torch.testing.assert_close(gnorm, analytic)


def test_double_backprop_matches_finite_differences():
    torch.manual_seed(1)
    model = LinearSoftmax(6, 3)
    x, y, tau = torch.randn(5, 1, 2, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1]), 0.3

    def penalty():
        _, g = signal_and_input_grad_norm(model, x, y, create_graph=True)
        return (g.mean() - tau) ** 2

    penalty().backward()
    analytic = model.linear.weight.grad.clone()
    eps, numeric = 1e-6, torch.zeros_like(analytic)
    w = model.linear.weight.data.view(-1)
    for idx in range(analytic.numel()):
        w[idx] += eps
        up = penalty().item()
        w[idx] -= 2 * eps
        down = penalty().item()
        w[idx] += eps
        numeric.view(-1)[idx] = (up - down) / (2 * eps)
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_signal_uses_eval_mode_and_restores_training_flag():
    model = LinearSoftmax(4, 2).train()
    signal_and_input_grad_norm(model, torch.randn(3, 1, 2, 2, dtype=torch.float64), torch.tensor([0, 1, 0]))
    assert model.training


def test_gp_params_defaults_are_the_design_starting_point():
    p = GradientPenaltyParams()
    assert (p.stage, p.lambda_gp, p.mu) == ("memgp", 1.0, 0.1)
