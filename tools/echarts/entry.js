// The parts of Apache ECharts that prov4ml's plots use (prov4ml/ui/static/plot.js, also inlined into the
// HTML reports), bundled by build.sh into prov4ml/ui/static/vendor/echarts.min.js as the global `echarts`.
// A part left out fails silently (its option is ignored): add it here when plot.js starts using one.
import * as echarts from "echarts/core";
import { LineChart, ScatterChart, ParallelChart } from "echarts/charts";  // parallel brings its coordinate system
import {
  GridComponent,
  LegendComponent,  // plot.js asks for type "scroll"
  TooltipComponent,  // brings the axis pointer
  ToolboxComponent,  // its dataZoom feature (box zoom) brings the select-type dataZoom
  VisualMapContinuousComponent,  // the parallel plot's colours
} from "echarts/components";
import { LegacyGridContainLabel } from "echarts/features";  // grid.containLabel, which plot.js sets
import { SVGRenderer } from "echarts/renderers";  // every plot is SVG (downloads are renderToSVGString)

echarts.use([
  LineChart, ScatterChart, ParallelChart,
  GridComponent, LegendComponent, TooltipComponent, ToolboxComponent, VisualMapContinuousComponent,
  LegacyGridContainLabel, SVGRenderer,
]);

// The same object the full build's UMD wrapper makes global: echarts/core's API.
globalThis.echarts = echarts;
