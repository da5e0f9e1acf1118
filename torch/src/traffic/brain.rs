//! The DQN agent of the competition, after ConvNetJS's `deepqlearn.Brain`,
//! in tch.
//!
//! The net maps the current observation, followed by the last
//! `temporal_window` observations each with its action one-hot scaled by the
//! observation length, through fully connected ReLU layers to 5 Q-values.
//! Hidden layers start with bias 0.1, the output layer with 0; weights are
//! drawn from N(0, 1 / fan_in).
//!
//! Learning, on each ego decision while learning is on: the transition
//! (previous input, previous action, reward since then, current input) goes
//! into a replay memory of `experience_size` (first in, first out until it is
//! full, then a random slot is replaced); once the memory holds more than
//! `start_learn_threshold` transitions, one SGD step is taken on `batch_size`
//! transitions drawn uniformly, minimising `0.5 * (Q(s, a) - target)^2` with
//! `target = r + gamma * max Q(s')` from the same net (no target net, no
//! terminal states), averaged over the batch, plus `0.5 * l2_decay * |w|^2 /
//! batch_size` on the weights (not the biases). Epsilon is 1 for the first
//! `learning_steps_burnin` decisions, then falls linearly to `epsilon_min` at
//! `learning_steps_total`; with learning off it is `epsilon_test_time`.
//!
//! Two differences from ConvNetJS, both on purpose: the transition is stored
//! on the decision that completes it, not one decision later, and no
//! transition spans two runs. Like the competition's copy of the library, a
//! brain answers action 0 until an agent has made `temporal_window`
//! decisions, so it has a full history.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::car::Action;
use super::grid::View;
use super::rng::ParkMiller;
use super::world::{Driver, MAX_CLONES};

const ACTIONS: i64 = Action::ALL.len() as i64;

/// The competition's knobs; the defaults are its `network_basic.js`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BrainConfig {
    pub lanes_side: usize,
    pub patches_ahead: usize,
    pub patches_behind: usize,
    pub temporal_window: usize,
    pub hidden_layers: Vec<i64>,
    pub learning_rate: f64,
    pub momentum: f64,
    pub batch_size: usize,
    pub l2_decay: f64,
    pub gamma: f64,
    pub experience_size: usize,
    pub start_learn_threshold: usize,
    pub learning_steps_total: u64,
    pub learning_steps_burnin: u64,
    pub epsilon_min: f64,
    pub epsilon_test_time: f64,
}

impl Default for BrainConfig {
    fn default() -> BrainConfig {
        BrainConfig {
            lanes_side: 1,
            patches_ahead: 10,
            patches_behind: 0,
            temporal_window: 0,
            hidden_layers: vec![10],
            learning_rate: 0.001,
            momentum: 0.0,
            batch_size: 64,
            l2_decay: 0.01,
            gamma: 0.5,
            experience_size: 3000,
            start_learn_threshold: 500,
            learning_steps_total: 10000,
            learning_steps_burnin: 1000,
            epsilon_min: 0.0,
            epsilon_test_time: 0.0,
        }
    }
}

impl BrainConfig {
    pub fn view(&self) -> View {
        View {
            lanes_side: self.lanes_side,
            patches_ahead: self.patches_ahead,
            patches_behind: self.patches_behind,
        }
    }

    /// Length of the net's input: `n * (1 + tw) + 5 * tw` for `n` cells.
    pub fn input_size(&self) -> usize {
        let cells = self.view().len();
        cells * (1 + self.temporal_window) + ACTIONS as usize * self.temporal_window
    }
}

/// The recent observations and actions of one controlled car.
#[derive(Default, Clone)]
struct History {
    observations: Vec<Vec<f32>>,
    actions: Vec<usize>,
    decisions: u64,
    /// The net input and action of the previous decision, while learning.
    previous: Option<(Vec<f32>, usize)>,
}

/// Stored transitions, one flat row per transition.
struct Memory {
    states: Vec<f32>,
    next_states: Vec<f32>,
    actions: Vec<i64>,
    rewards: Vec<f32>,
    width: usize,
}

impl Memory {
    fn len(&self) -> usize {
        self.actions.len()
    }

    fn put(&mut self, slot: Option<usize>, state: &[f32], action: usize, reward: f64, next: &[f32]) {
        let w = self.width;
        match slot {
            None => {
                self.states.extend_from_slice(state);
                self.next_states.extend_from_slice(next);
                self.actions.push(action as i64);
                self.rewards.push(reward as f32);
            }
            Some(i) => {
                self.states[i * w..(i + 1) * w].copy_from_slice(state);
                self.next_states[i * w..(i + 1) * w].copy_from_slice(next);
                self.actions[i] = action as i64;
                self.rewards[i] = reward as f32;
            }
        }
    }
}

/// A DQN agent that drives the ego and, as frozen copies, the clones.
pub struct Brain {
    pub config: BrainConfig,
    pub vs: nn::VarStore,
    net: nn::Sequential,
    optimizer: Option<nn::Optimizer>,
    memory: Memory,
    histories: Vec<History>,
    rng: ParkMiller,
    /// Ego decisions taken while learning.
    pub age: u64,
    pub learning: bool,
    /// Clones act uniformly at random, as the competition's clones do while
    /// training (their epsilon never leaves 1).
    pub random_clones: bool,
    /// Learning steps taken, and the sum of their losses.
    pub steps: u64,
    pub loss_sum: f64,
}

impl Brain {
    /// Builds a brain with fresh weights drawn from libtorch's generator,
    /// seeded with `seed`, and its own draws seeded with `seed` too.
    pub fn new(config: BrainConfig, seed: i64) -> Result<Brain> {
        if config.view().is_empty() {
            bail!("the view has no cells: `patches_ahead` + `patches_behind` must be at least 1");
        }
        if config.batch_size == 0 || config.experience_size == 0 {
            bail!("`batch_size` and `experience_size` must be at least 1");
        }
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = network(&vs.root(), &config);
        let width = config.input_size();
        let memory = Memory {
            states: Vec::new(),
            next_states: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            width,
        };
        Ok(Brain {
            config,
            vs,
            net,
            optimizer: None,
            memory,
            histories: vec![History::default(); MAX_CLONES + 1],
            rng: ParkMiller::new(seed),
            age: 0,
            learning: false,
            random_clones: false,
            steps: 0,
            loss_sum: 0.0,
        })
    }

    /// Forgets every car's recent history, as at the start of a run.
    pub fn start_run(&mut self) {
        for history in &mut self.histories {
            history.previous = None;
        }
    }

    /// The current exploration rate.
    pub fn epsilon(&self) -> f64 {
        if !self.learning {
            return self.config.epsilon_test_time;
        }
        let c = &self.config;
        let span = c.learning_steps_total as f64 - c.learning_steps_burnin as f64;
        let progress = (self.age as f64 - c.learning_steps_burnin as f64) / span;
        (1.0 - progress).max(c.epsilon_min).min(1.0)
    }

    /// Returns the greedy action for one net input.
    pub fn greedy(&self, input: &[f32]) -> usize {
        let q = tch::no_grad(|| self.net.forward(&Tensor::from_slice(input).unsqueeze(0)));
        q.argmax(-1, false).int64_value(&[0]) as usize
    }

    /// Builds the net input of `agent` from its observation and history.
    fn net_input(&self, agent: usize, observation: &[f32]) -> Option<Vec<f32>> {
        let tw = self.config.temporal_window;
        let history = &self.histories[agent];
        if history.observations.len() < tw {
            return None;
        }
        let mut input = observation.to_vec();
        let scale = observation.len() as f32;
        for k in 0..tw {
            let back = history.observations.len() - 1 - k;
            input.extend_from_slice(&history.observations[back]);
            let mut one_hot = [0.0f32; ACTIONS as usize];
            one_hot[history.actions[back]] = scale;
            input.extend_from_slice(&one_hot);
        }
        Some(input)
    }

    fn remember(&mut self, agent: usize, observation: &[f32], action: usize) {
        let tw = self.config.temporal_window;
        let history = &mut self.histories[agent];
        history.decisions += 1;
        if tw == 0 {
            return;
        }
        history.observations.push(observation.to_vec());
        history.actions.push(action);
        if history.observations.len() > tw {
            history.observations.remove(0);
            history.actions.remove(0);
        }
    }

    fn learn(&mut self, input: &[f32], reward: f64) -> Result<()> {
        self.age += 1;
        if let Some((state, action)) = self.histories[0].previous.take() {
            let capacity = self.config.experience_size;
            let slot = (self.memory.len() >= capacity).then(|| self.rng.below(capacity));
            self.memory.put(slot, &state, action, reward, input);
        }
        if self.memory.len() > self.config.start_learn_threshold {
            self.train_step()?;
        }
        Ok(())
    }

    fn train_step(&mut self) -> Result<()> {
        let c = &self.config;
        let (b, w) = (c.batch_size, self.memory.width);
        let picks: Vec<usize> = (0..b).map(|_| self.rng.below(self.memory.len())).collect();
        let gather = |rows: &Vec<f32>| -> Tensor {
            let mut flat = Vec::with_capacity(b * w);
            for &i in &picks {
                flat.extend_from_slice(&rows[i * w..(i + 1) * w]);
            }
            Tensor::from_slice(&flat).view([b as i64, w as i64])
        };
        let states = gather(&self.memory.states);
        let next = gather(&self.memory.next_states);
        let actions = Tensor::from_slice(&picks.iter().map(|&i| self.memory.actions[i]).collect::<Vec<_>>());
        let rewards = Tensor::from_slice(&picks.iter().map(|&i| self.memory.rewards[i]).collect::<Vec<_>>());
        let best_next = tch::no_grad(|| self.net.forward(&next).max_dim(-1, false).0);
        let target = rewards + best_next * c.gamma;
        let q = self.net.forward(&states).gather(1, &actions.unsqueeze(1), false).squeeze_dim(1);
        let td = (q - target).square().sum(Kind::Float) * 0.5;
        let mut penalty = Tensor::zeros([], (Kind::Float, Device::Cpu));
        for (name, var) in self.vs.variables() {
            if name.ends_with("weight") {
                penalty = penalty + var.square().sum(Kind::Float);
            }
        }
        let loss = (td + penalty * (0.5 * c.l2_decay)) / b as f64;
        if self.optimizer.is_none() {
            let sgd = nn::Sgd { momentum: c.momentum, ..Default::default() };
            self.optimizer = Some(sgd.build(&self.vs, c.learning_rate)?);
        }
        if let Some(optimizer) = self.optimizer.as_mut() {
            optimizer.backward_step(&loss);
        }
        self.steps += 1;
        self.loss_sum += loss.double_value(&[]);
        Ok(())
    }

    /// Decides for `agent`, learning first when this is the ego's decision
    /// and learning is on. Errors from libtorch end the process.
    fn choose(&mut self, agent: usize, observation: &[f32], reward: Option<f64>) -> Result<usize> {
        if agent > 0 && self.random_clones {
            return Ok(self.rng.below(ACTIONS as usize));
        }
        let input = self.net_input(agent, observation);
        if let (Some(input), Some(reward), true) = (&input, reward, self.learning && agent == 0) {
            self.learn(input, reward)?;
        }
        let action = match &input {
            None => 0,
            Some(_) if self.rng.uniform() < self.epsilon() => self.rng.below(ACTIONS as usize),
            Some(input) => self.greedy(input),
        };
        if let (Some(input), true) = (input, self.learning && agent == 0) {
            self.histories[0].previous = Some((input, action));
        }
        self.remember(agent, observation, action);
        Ok(action)
    }
}

impl Driver for Brain {
    fn decide(&mut self, agent: usize, observation: &[f32], reward: Option<f64>) -> usize {
        match self.choose(agent, observation, reward) {
            Ok(action) => action,
            Err(err) => panic!("the DQN failed to learn: {err:#}"),
        }
    }
}

/// Builds the fully connected net and initialises it as ConvNetJS does.
fn network(root: &nn::Path, config: &BrainConfig) -> nn::Sequential {
    let mut net = nn::seq();
    let mut fan_in = config.input_size() as i64;
    let mut sizes = config.hidden_layers.clone();
    sizes.push(ACTIONS);
    let last = sizes.len() - 1;
    for (index, &size) in sizes.iter().enumerate() {
        let bias = if index < last { 0.1 } else { 0.0 };
        let init = nn::LinearConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: (1.0 / fan_in as f64).sqrt() },
            bs_init: Some(nn::Init::Const(bias)),
            bias: true,
        };
        net = net.add(nn::linear(root / format!("fc{index}"), fan_in, size, init));
        if index < last {
            net = net.add_fn(|x| x.relu());
        }
        fan_in = size;
    }
    net
}
