// A counter on the iCEstick (Lattice iCE40 HX1K): the 12 MHz board clock is
// multiplied to 48 MHz by the PLL module that icepll generates (pll.v), and
// the top bits of a counter drive the five LEDs.
module top(input clk, output [4:0] led);
  wire clk48;
  wire locked;
  pll pll_i(.clock_in(clk), .clock_out(clk48), .locked(locked));

  reg [27:0] counter = 0;
  always @(posedge clk48)
    if (locked)
      counter <= counter + 1;
  assign led = counter[27:23];
endmodule
