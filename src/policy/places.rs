//! Client places: where a client is, for the policies that rank pools by distance.
//!
//! `nearest` and `latency` rank a service's pools by the great-circle distance from the client's
//! own position (its GeoIP record's coordinates, else its country's centroid, else its region's
//! location) to each pool's location. The query path does no trigonometry (ARCHITECTURE.md,
//! "Hot-path budget"), so positions are bucketed and every bucket is decided beforehand:
//!
//! - A **cell** ([`Cell`]) is one degree of latitude by one degree of longitude (180 × 360) in
//!   one of four accuracy bands: the client's accuracy radius under 50 km, under 200 km, under
//!   500 km, or more ([`BANDS_KM`]): 259,200 cells. [`Cell::of`] is two floors and three
//!   compares.
//! - A [`Geometry`] ranks a service's pools at the centre of every cell (for its accuracy band)
//!   and at every region's location (a class of its own each), groups near-ties into levels (see [`Ties`]), and interns
//!   identical rankings as **classes**. The decision tables then hold one decision per class, and
//!   the geometry one `u32` class number per cell: 1 MiB per geometry whatever the number of
//!   pools, plus the classes themselves. Classes tell apart the first [`SIGNIFICANT`] ranked
//!   pools; further pools keep the order of the class's first place. Services with the same
//!   pools, policy, tie settings and latency excesses share one geometry, and a table rebuild
//!   that changes none of those (a health change) reuses the previous build's.
//!
//! A cell's centre is at most 79 km from any point in it; near-ties within `tie_km` (default
//! 50 km) share anyway, so a client near the boundary between two pools goes to one that is at
//! most about 200 km further than the nearest.

use std::collections::HashMap;

use super::geometry::{KM_PER_RTT_MS, distance_km, estimated_rtt_ms};
use super::rank::{RankReason, RankedPool};

/// Rows of cells, one per degree of latitude.
pub const ROWS: usize = 180;
/// Columns of cells, one per degree of longitude.
pub const COLS: usize = 360;
/// Lower bounds of the accuracy bands, in km: a client's accuracy radius falls in the last band
/// whose bound it reaches. Near-ties widen by `tie_radius ×` the band's bound.
pub const BANDS_KM: [f64; 4] = [0.0, 50.0, 200.0, 500.0];
/// Number of cells.
pub const CELLS: usize = ROWS * COLS * BANDS_KM.len();
/// Cells share a class when their first this many ranked pools (and those pools' levels) agree;
/// further pools keep the order of the class's first place. They take traffic only when all
/// of those are out of capacity at once, and the full order of ten pools would otherwise make
/// ten thousand classes.
pub const SIGNIFICANT: usize = 4;

/// One cell: a square degree and an accuracy band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cell(u32);

impl Cell {
    /// The cell of a position; out-of-range or non-finite values are clamped (latitude),
    /// wrapped (longitude) or put in the first band (radius).
    #[inline]
    pub fn of(lat: f64, lon: f64, radius_km: f64) -> Cell {
        // `as` saturates and maps NaN to 0, so nothing here can panic.
        let row = ((lat + 90.0).floor() as i64).clamp(0, ROWS as i64 - 1);
        let col = ((lon + 180.0).floor() as i64).rem_euclid(COLS as i64);
        let band = BANDS_KM.iter().rposition(|&b| radius_km >= b).unwrap_or(0) as i64;
        Cell(((band * ROWS as i64 + row) * COLS as i64 + col) as u32)
    }

    /// Position in the grid.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// Latitude and longitude of the cell's centre.
    pub fn centre(self) -> (f64, f64) {
        let i = self.0 as usize % (ROWS * COLS);
        ((i / COLS) as f64 - 89.5, (i % COLS) as f64 - 179.5)
    }

    /// The lower bound of the cell's accuracy band, in km.
    pub fn band_km(self) -> f64 {
        BANDS_KM[self.0 as usize / (ROWS * COLS)]
    }
}

/// Where a client is, as a decision can depend on it: its region (for the region policies and
/// when nothing better is known) and, when its position is known, its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The client's region.
    pub region: usize,
    /// The client's cell, when its position is known.
    pub cell: Option<Cell>,
}

/// What a geometry scores pools by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `nearest`: great-circle km.
    Distance,
    /// `latency`: the distance model's round trip plus the pool's excess, in ms.
    Rtt,
}

/// How near-ties group: a pool joins the level of the pool that starts it when its distance is
/// within `max(km, ratio × that pool's distance) + radius × the client's accuracy band` of it
/// (in ms at 1 ms per 100 km for `latency`). Pools of one level share traffic by capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ties {
    pub km: f64,
    pub ratio: f64,
    pub radius: f64,
}

/// One pool of a service as a geometry sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    /// Index into the model's pools.
    pub pool: usize,
    pub lat: f64,
    pub lon: f64,
    /// `latency` only: the pool's measured excess over the distance model, in ms.
    pub excess_ms: f64,
}

/// What a geometry is a function of; equal keys give equal geometries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GeometryKey {
    metric: Metric,
    /// (pool, latitude, longitude, excess) as bits, per site in service order.
    sites: Vec<(usize, u64, u64, u64)>,
    /// Region locations as bits.
    regions: Vec<(u64, u64)>,
    ties: [u64; 3],
}

impl GeometryKey {
    /// The key of a geometry over `sites`, ranking also at `regions` (latitude, longitude).
    pub fn new(metric: Metric, sites: &[Site], regions: &[(f64, f64)], ties: Ties) -> Self {
        GeometryKey {
            metric,
            sites: sites
                .iter()
                .map(|s| {
                    (
                        s.pool,
                        s.lat.to_bits(),
                        s.lon.to_bits(),
                        s.excess_ms.to_bits(),
                    )
                })
                .collect(),
            regions: regions
                .iter()
                .map(|(a, b)| (a.to_bits(), b.to_bits()))
                .collect(),
            ties: [
                ties.km.to_bits(),
                ties.ratio.to_bits(),
                ties.radius.to_bits(),
            ],
        }
    }
}

/// One class: a ranking of the service's pools with its levels, shared by every cell (and
/// region location) where the pools rank so.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    /// Pools in rank order, scored at `at`.
    pub ranked: Vec<RankedPool>,
    /// Level of each ranked pool.
    pub levels: Vec<usize>,
    /// The first place ranked into this class (latitude, longitude, accuracy band km): the
    /// distances in `ranked` are from there.
    pub at: (f64, f64, f64),
}

/// Rankings of one service's pools for every cell and region location.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    key: GeometryKey,
    /// Per cell: its class.
    grid: Box<[u32]>,
    /// Per region: the class of a client at the region's location, accuracy band 0.
    regions: Vec<u32>,
    /// Every class.
    pub classes: Vec<Class>,
}

impl Geometry {
    /// Rank `sites` everywhere. `regions` are the region locations (latitude, longitude).
    pub fn build(metric: Metric, sites: &[Site], regions: &[(f64, f64)], ties: Ties) -> Geometry {
        let key = GeometryKey::new(metric, sites, regions, ties);
        let mut b = Builder {
            metric,
            sites,
            ties,
            classes: Vec::new(),
            index: HashMap::new(),
            km: vec![0.0; sites.len()],
            order: Vec::with_capacity(sites.len()),
            levels: Vec::with_capacity(sites.len()),
            signature: Vec::with_capacity(sites.len() * 4),
            last: Default::default(),
        };
        // Each region location is a class of its own, so that a region's decision explains
        // itself with its own distances; cells share classes.
        let regions_out = regions
            .iter()
            .map(|&(lat, lon)| {
                b.distances(lat, lon);
                b.rank(lat, lon, 0.0, false)
            })
            .collect();
        let mut grid = vec![0u32; CELLS].into_boxed_slice();
        for row in 0..ROWS {
            for col in 0..COLS {
                let (lat, lon) = Cell((row * COLS + col) as u32).centre();
                b.distances(lat, lon);
                for (band, &band_km) in BANDS_KM.iter().enumerate() {
                    // Without radius widening every band ranks alike.
                    grid[(band * ROWS + row) * COLS + col] = if band > 0 && ties.radius == 0.0 {
                        grid[row * COLS + col]
                    } else {
                        b.rank(lat, lon, band_km, true)
                    };
                }
            }
        }
        Geometry {
            key,
            grid,
            regions: regions_out,
            classes: b.classes,
        }
    }

    /// What this geometry is a function of.
    pub fn key(&self) -> &GeometryKey {
        &self.key
    }

    /// The class of a cell.
    #[inline]
    pub fn class_of(&self, cell: Cell) -> usize {
        self.grid[cell.index()] as usize
    }

    /// The class of a client known only by its region.
    #[inline]
    pub fn class_of_region(&self, region: usize) -> usize {
        self.regions[region] as usize
    }

    /// Each class's demand: the weight of the cells it holds, and of the clients placed without a
    /// position in each region whose location it holds.
    /// Only the clients of the regions `counts` accepts count.
    pub fn class_demand(&self, demand: &super::Demand, counts: impl Fn(usize) -> bool) -> Vec<f64> {
        let mut out = vec![0.0; self.classes.len()];
        for &(cell, region, w) in &demand.cells {
            if let Some(&c) = self
                .grid
                .get(cell as usize)
                .filter(|_| counts(region as usize))
            {
                out[c as usize] += w;
            }
        }
        for (r, (&c, &w)) in self.regions.iter().zip(&demand.unplaced).enumerate() {
            if counts(r) {
                out[c as usize] += w;
            }
        }
        out
    }

    /// Heap bytes held (the grid and the classes).
    pub fn heap_bytes(&self) -> usize {
        self.grid.len() * 4
            + self.regions.len() * 4
            + self
                .classes
                .iter()
                .map(|c| {
                    std::mem::size_of::<Class>()
                        + c.ranked.capacity() * std::mem::size_of::<RankedPool>()
                        + c.levels.capacity() * 8
                })
                .sum::<usize>()
    }
}

/// Scratch space and the class index while a geometry is built.
struct Builder<'a> {
    metric: Metric,
    sites: &'a [Site],
    ties: Ties,
    classes: Vec<Class>,
    index: HashMap<Vec<u8>, u32>,
    /// Distance from the current point to each site.
    km: Vec<f64>,
    order: Vec<usize>,
    levels: Vec<usize>,
    signature: Vec<u8>,
    /// Per accuracy band: the last shared class ranked, and its signature.
    last: [Option<(Vec<u8>, u32)>; BANDS_KM.len()],
}

impl Builder<'_> {
    /// Distances from a point to every site, and the sites in score order.
    fn distances(&mut self, lat: f64, lon: f64) {
        for (d, s) in self.km.iter_mut().zip(self.sites) {
            *d = distance_km(lat, lon, s.lat, s.lon);
        }
        self.order.clear();
        self.order.extend(0..self.sites.len());
        // Stable: equal scores keep the configured order.
        let mut order = std::mem::take(&mut self.order);
        order.sort_by(|&a, &b| self.score(a).total_cmp(&self.score(b)));
        self.order = order;
    }

    fn score(&self, slot: usize) -> f64 {
        match self.metric {
            Metric::Distance => self.km[slot],
            Metric::Rtt => estimated_rtt_ms(self.km[slot]) + self.sites[slot].excess_ms,
        }
    }

    /// The class of the current point (distances already computed) for an accuracy band:
    /// an existing one with the same ranking and levels when `shared`, else a new one.
    fn rank(&mut self, lat: f64, lon: f64, band_km: f64, shared: bool) -> u32 {
        self.levels.clear();
        let (mut level, mut start) = (0, 0);
        for (i, &slot) in self.order.iter().enumerate() {
            if i > 0 {
                let first = self.order[start];
                let band_km_here =
                    self.ties.km.max(self.ties.ratio * self.km[first]) + self.ties.radius * band_km;
                let band = match self.metric {
                    Metric::Distance => band_km_here,
                    Metric::Rtt => band_km_here / KM_PER_RTT_MS,
                };
                if self.score(slot) - self.score(first) > band {
                    level += 1;
                    start = i;
                }
            }
            self.levels.push(level);
        }
        self.signature.clear();
        for (&slot, &level) in self.order.iter().zip(&self.levels).take(SIGNIFICANT) {
            self.signature
                .extend_from_slice(&(slot as u16).to_le_bytes());
            self.signature
                .extend_from_slice(&(level as u16).to_le_bytes());
        }
        // Neighbouring cells mostly rank alike: compare with the last cell of this band
        // before hashing.
        let memo = BANDS_KM.iter().position(|&b| b == band_km).unwrap_or(0);
        if shared {
            if let Some((sig, c)) = &self.last[memo]
                && *sig == self.signature
            {
                return *c;
            }
            if let Some(&c) = self.index.get(&self.signature) {
                self.last[memo] = Some((self.signature.clone(), c));
                return c;
            }
        }
        let c = self.classes.len() as u32;
        let ranked = self
            .order
            .iter()
            .map(|&slot| {
                let s = &self.sites[slot];
                let distance_km = self.km[slot];
                let reason = match self.metric {
                    Metric::Distance => RankReason::Distance,
                    Metric::Rtt => RankReason::EstimatedRtt {
                        distance_ms: estimated_rtt_ms(distance_km),
                        excess_ms: s.excess_ms,
                    },
                };
                RankedPool {
                    pool: s.pool,
                    score: self.score(slot),
                    reason,
                    distance_km,
                }
            })
            .collect();
        self.classes.push(Class {
            ranked,
            levels: self.levels.clone(),
            at: (lat, lon, band_km),
        });
        if shared {
            self.index.insert(self.signature.clone(), c);
            self.last[memo] = Some((self.signature.clone(), c));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(pool: usize, lat: f64, lon: f64) -> Site {
        Site {
            pool,
            lat,
            lon,
            excess_ms: 0.0,
        }
    }

    const STRICT: Ties = Ties {
        km: 0.0,
        ratio: 0.0,
        radius: 0.0,
    };

    #[test]
    fn cells_cover_the_globe_and_clamp_or_wrap_the_rest() {
        let c = Cell::of(50.1, 8.7, 0.0);
        assert_eq!(c.centre(), (50.5, 8.5));
        assert_eq!(c.band_km(), 0.0);
        assert_eq!(Cell::of(-90.0, -180.0, 0.0).index(), 0);
        assert_eq!(Cell::of(90.0, 0.0, 0.0), Cell::of(89.9, 0.0, 0.0));
        assert_eq!(Cell::of(0.0, 180.0, 0.0), Cell::of(0.0, -180.0, 0.0));
        assert_eq!(Cell::of(0.0, 540.0, 0.0), Cell::of(0.0, 180.0, 0.0));
        assert_eq!(
            Cell::of(f64::NAN, f64::NAN, f64::NAN),
            Cell::of(-90.0, -180.0, 0.0)
        );
        assert_eq!(Cell::of(10.0, 10.0, 49.9).band_km(), 0.0);
        assert_eq!(Cell::of(10.0, 10.0, 50.0).band_km(), 50.0);
        assert_eq!(Cell::of(10.0, 10.0, 1000.0).band_km(), 500.0);
        assert!(Cell::of(89.9, 179.9, 1e9).index() < CELLS);
    }

    #[test]
    fn every_cell_ranks_the_nearest_pool_first() {
        let sites = [
            site(0, 50.1, 8.7),
            site(1, 38.9, -77.0),
            site(2, 1.35, 103.8),
        ];
        let g = Geometry::build(Metric::Distance, &sites, &[(48.8, 2.3)], STRICT);
        for (lat, lon) in [(51.5, -0.1), (40.7, -74.0), (35.7, 139.7), (-33.9, 151.2)] {
            let class = &g.classes[g.class_of(Cell::of(lat, lon, 0.0))];
            let best = (0..3)
                .min_by(|&a, &b| {
                    let d = |s: &Site| distance_km(lat, lon, s.lat, s.lon);
                    d(&sites[a]).total_cmp(&d(&sites[b]))
                })
                .unwrap();
            assert_eq!(class.ranked[0].pool, best, "at {lat},{lon}");
        }
        assert_eq!(g.classes[g.class_of_region(0)].ranked[0].pool, 0);
        // Three pools order in at most 3! ways, each a class with strict levels, plus one class
        // for the one region location.
        assert!(g.classes.len() <= 7, "{}", g.classes.len());
    }

    #[test]
    fn near_ties_share_a_level_and_the_accuracy_band_widens_them() {
        // Two pools 40 km apart east-west; a client 600 km north of their midpoint.
        let sites = [site(0, 50.0, 8.0), site(1, 50.0, 8.56)];
        let ties = Ties {
            km: 0.0,
            ratio: 0.0,
            radius: 0.5,
        };
        let g = Geometry::build(Metric::Distance, &sites, &[], ties);
        // In the cell centred on (55.5, 8.5), pool 1 is nearer by a few km.
        let precise = &g.classes[g.class_of(Cell::of(55.2, 8.2, 10.0))];
        assert_eq!(precise.levels, vec![0, 1]);
        let vague = &g.classes[g.class_of(Cell::of(55.2, 8.2, 300.0))];
        assert_eq!(vague.levels, vec![0, 0]);
        let by_km = Geometry::build(
            Metric::Distance,
            &sites,
            &[],
            Ties {
                km: 50.0,
                ratio: 0.0,
                radius: 0.0,
            },
        );
        assert_eq!(
            by_km.classes[by_km.class_of(Cell::of(55.2, 8.2, 10.0))].levels,
            vec![0, 0]
        );
    }

    #[test]
    fn latency_adds_the_excess_to_the_distance_model() {
        let mut sites = [site(0, 50.1, 8.7), site(1, 51.5, -0.1)];
        // From Paris both are a few hundred km away; London has 20 ms of excess.
        sites[1].excess_ms = 20.0;
        let g = Geometry::build(Metric::Rtt, &sites, &[], STRICT);
        let c = &g.classes[g.class_of(Cell::of(48.8, 2.3, 0.0))];
        assert_eq!(c.ranked[0].pool, 0);
        match c.ranked[1].reason {
            RankReason::EstimatedRtt { excess_ms, .. } => assert_eq!(excess_ms, 20.0),
            r => panic!("{r:?}"),
        }
        assert!(
            (c.ranked[1].score - (estimated_rtt_ms(c.ranked[1].distance_km) + 20.0)).abs() < 1e-9
        );
    }

    #[test]
    fn equal_keys_for_equal_inputs_only() {
        let sites = [site(0, 50.1, 8.7), site(1, 38.9, -77.0)];
        let a = GeometryKey::new(Metric::Distance, &sites, &[], STRICT);
        assert_eq!(a, GeometryKey::new(Metric::Distance, &sites, &[], STRICT));
        assert_ne!(a, GeometryKey::new(Metric::Rtt, &sites, &[], STRICT));
        let mut moved = sites;
        moved[1].excess_ms = 1.0;
        assert_ne!(a, GeometryKey::new(Metric::Distance, &moved, &[], STRICT));
    }
}
